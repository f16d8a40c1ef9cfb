"""Errors of customers and their e:service activation."""

from app.core.errors import AppError, Conflict, register_unique_violation


class ActivationInvalid(AppError):
    """Wrong customer number or wrong (or used) activation code: one answer for all."""

    status, code, title = 400, "activation_invalid", "Customer number or activation code is wrong"


class CustomerNumberTaken(Conflict):
    code, title = "customer_number_taken", "This customer number already exists"


register_unique_violation(
    "uq_customers_customer_number", "customers.customer_number", CustomerNumberTaken
)
