"""Errors of contracts and of opening a contract's PBX."""

from app.core.errors import Conflict, NotFound


class ContractNotFound(NotFound):
    """No such contract of the caller's customer (another customer's looks the same)."""

    code, title = "not_found", "Contract not found"


class ContractTerminated(Conflict):
    """The contract has ended; its PBX can no longer be opened."""

    code, title = "contract_terminated", "The contract is terminated"


class PbxNotConfigured(Conflict):
    """The contract has no PBX tenant, so there is no PBX to open."""

    code, title = "pbx_not_configured", "The contract has no cloud PBX"


class CustomerNotFound(NotFound):
    """The operator named a customer number that does not exist."""

    code, title = "customer_not_found", "No customer with this number"


class ContractNumberTaken(Conflict):
    """Contract numbers are unique across all customers."""

    code, title = "contract_number_taken", "This contract number is already in use"
