"""documents: the documentation catalogue (handbook and guides)

Revision ID: 0002
Revises: 0001c
Create Date: 2026-11-25 11:00:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = "0002"
down_revision: str | None = "0001c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("handbook", "guide", name="documentkind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("product", sa.String(length=32), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=True),
        sa.Column("content_type", sa.String(length=100), nullable=True),
        sa.Column("created_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(url IS NULL) <> (file_name IS NULL)", name=op.f("ck_documents_url_or_file")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
    )


def downgrade() -> None:
    op.drop_table("documents")
