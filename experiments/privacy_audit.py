"""Privacy audit of a vector store: inversion leakage, PII recovery, defenses and utility.

    python experiments/privacy_audit.py store=chroma store.path=DIR inverter_path=CKPT
    python experiments/privacy_audit.py store=qdrant store.path=DIR store.collection=docs \
        inverter_path=CKPT logger=none audit.show_examples=true

Writes report.html and report.json into the Hydra run folder and returns the undefended
token F1 (or cosine, for a vectors-only store) for sweepers.
"""

import hydra
from omegaconf import DictConfig, OmegaConf

import invert  # noqa: F401  (sets offline hub defaults before anything loads)
from invert.privacy import run_privacy_audit


@hydra.main(version_base="1.3", config_path="../conf", config_name="privacy_audit")
def main(cfg: DictConfig) -> float:
    result = run_privacy_audit(OmegaConf.to_container(cfg, resolve=True))
    base = result["rows"][0]
    print(f"report: {result['files']['html']}")
    return float(base.get("token_f1", base["cosine"]))


if __name__ == "__main__":
    main()
