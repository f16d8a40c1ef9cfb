"""Request and response bodies of the e:service activation."""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from app.users.fields import Email, LoginId, PersonName, PhoneNumber, reject_control_characters

CustomerNumber = Annotated[
    str,
    StringConstraints(min_length=1, max_length=32, strip_whitespace=True),
    AfterValidator(reject_control_characters),
]
CustomerName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
    AfterValidator(reject_control_characters),
]
ActivationCode = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(reject_control_characters),
]

REGISTRATION_MESSAGE = (
    "Ihr Zugang wurde angelegt. Wir haben Ihnen eine E-Mail mit einem Link zum Festlegen "
    "Ihres Kennworts geschickt."
)


class RegistrationIn(BaseModel):
    """The letter's customer number and activation code, and the first portal admin."""

    model_config = ConfigDict(extra="forbid")

    customer_number: CustomerNumber
    activation_code: ActivationCode
    login: LoginId
    first_name: PersonName
    last_name: PersonName
    email: Email
    phone: PhoneNumber | None = None


class RegistrationOut(BaseModel):
    message: str
    login: str
