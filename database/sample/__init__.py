"""The sample retailer: a deterministic generator with documented planted effects."""

from storecast.database.sample.generate import DEFAULT_END_DATE, SampleData, generate
from storecast.database.sample.scales import SCALES, Scale

__all__ = ["DEFAULT_END_DATE", "SCALES", "SampleData", "Scale", "generate"]
