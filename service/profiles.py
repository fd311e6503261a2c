"""Load a municipality profile: validate it whole, then write it in one transaction.

Reading and validating live in service/profilecheck.py, writing in service/profilesync.py;
this module hands their public names on, for the interfaces.
"""

from service.profilecheck import Attachment as Attachment
from service.profilecheck import ValidProfile as ValidProfile
from service.profilecheck import identity_number_problems as identity_number_problems
from service.profilecheck import validate_profile as validate_profile
from service.profilesync import LoadResult as LoadResult
from service.profilesync import load_profile as load_profile
from service.profilesync import upsert_booking as upsert_booking
