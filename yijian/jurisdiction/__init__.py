"""Guazhou county's jurisdiction: which county, township, village and grid own a place.

Only the county and township names are real; codes below the county, village and grid names
and all geometry are generated (see generate.py) and made up.
"""

from yijian.jurisdiction.model import Jurisdiction, Org, OrgKind, Placement

__all__ = ["Jurisdiction", "Org", "OrgKind", "Placement"]
