"""Synthetic records carrying PII (Faker), with per-field ground truth for privacy audits.

Seeded: the same seed gives the same records on any day (birth dates come from a fixed
window, not from a count back from today).
"""

from __future__ import annotations

import datetime
import random

from invert.data.corpora import CorpusPackageMissingError, register_corpus

_PII_TEMPLATES = (
    "Patient {first_name} {last_name}, born {date}, of {city}, was seen for {complaint}. "
    "Contact: {phone}.",
    "{first_name} {last_name} (DOB {date}) presented with {complaint}; lives at {address}, "
    "{city}; phone {phone}.",
    "Customer record: {last_name}, {first_name}. Date of birth {date}. Address {address}, "
    "{city}. Tel {phone}.",
    "Please call {first_name} {last_name} at {phone} about the order shipped on {date} to "
    "{address}, {city}.",
    "Discharge note for {first_name} {last_name}, admitted {date} from {city} with "
    "{complaint}; next of kin at {phone}.",
    "On {date}, {first_name} {last_name} of {address}, {city} opened an account; callback "
    "number {phone}.",
)
_COMPLAINTS = (
    "chest pain|a persistent cough|lower back pain|migraine headaches|a sprained ankle|"
    "shortness of breath|abdominal pain|a skin rash|high blood pressure|fatigue"
).split("|")


_BIRTH_WINDOW = (datetime.date(1930, 1, 1), datetime.date(2024, 12, 31))


def _birth_date(rng: random.Random) -> datetime.date:
    start, end = _BIRTH_WINDOW
    return start + datetime.timedelta(days=rng.randrange((end - start).days + 1))


def synthetic_pii_records(n: int = 5000, seed: int = 0) -> list[dict[str, str]]:
    """Synthetic records carrying PII, with per-field ground truth for privacy audits.

    Args:
        n: Number of records.
        seed: Faker seed; the same seed gives the same records.

    Returns:
        Dicts with ``text`` and the fields it contains: ``first_name``, ``last_name``, ``date``,
        ``city``, ``address``, ``phone`` (and ``template``, the template index).
    """
    try:
        from faker import Faker
    except ImportError as err:
        raise CorpusPackageMissingError(
            "synthetic_pii needs the pip package 'faker'; run `pip install faker`"
        ) from err
    fake = Faker("en_US")
    fake.seed_instance(seed)
    records = []
    for _ in range(n):
        template = fake.random.randrange(len(_PII_TEMPLATES))
        fields = {
            "first_name": fake.first_name(),
            "last_name": fake.last_name(),
            # Drawn from a fixed window, not Faker's date_of_birth: that one counts back from
            # today, so a store built yesterday no longer matched today's records.
            "date": _birth_date(fake.random).strftime("%B %d, %Y"),
            "city": fake.city(),
            "address": fake.street_address(),
            "phone": fake.phone_number(),
        }
        complaint = fake.random.choice(_COMPLAINTS)
        text = _PII_TEMPLATES[template].format(**fields, complaint=complaint)
        records.append({"text": text, **fields, "template": str(template)})
    return records


@register_corpus("synthetic_pii")
def load_synthetic_pii(n: int = 5000, seed: int = 0) -> list[str]:
    """Texts of ``synthetic_pii_records(n, seed)``."""
    return [record["text"] for record in synthetic_pii_records(n, seed)]
