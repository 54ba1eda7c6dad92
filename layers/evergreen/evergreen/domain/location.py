"""Where a customer is: an address as the location facts read it, and great-circle distance.

Shopify geocodes shipping addresses itself (their `latitude` and `longitude`), so no geocoding happens here.
Which address a profile's location facts come from is decided in `facts.py` (docs/facts.md, "Location").
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

EARTH_RADIUS_KM = 6371.0088
"""The mean Earth radius (IUGG), in kilometres."""


class Address(BaseModel):
    """The parts of a postal address that segments test. Codes upper-case; postal code without spaces."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    country_code: str | None = None
    province_code: str | None = None
    city: str | None = None
    postal_code: str | None = None
    latitude: float | None = None
    longitude: float | None = None

    @property
    def coordinates(self) -> tuple[float, float] | None:
        """(latitude, longitude) in degrees, when both are known."""
        if self.latitude is None or self.longitude is None:
            return None
        return (self.latitude, self.longitude)

    @property
    def empty(self) -> bool:
        return not any((self.country_code, self.province_code, self.city, self.postal_code, self.coordinates))


def normalise_postal_code(postal_code: str | None) -> str | None:
    """Postal codes compare upper-case and without spaces: `k2p 0v6` is `K2P0V6`."""
    if postal_code is None:
        return None
    cleaned = "".join(postal_code.split()).upper()
    return cleaned or None


def great_circle_km(start: tuple[float, float], end: tuple[float, float]) -> float:
    """The haversine distance between two (latitude, longitude) points, in kilometres."""
    lat1, lon1 = map(math.radians, start)
    lat2, lon2 = map(math.radians, end)
    half = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(half)))
