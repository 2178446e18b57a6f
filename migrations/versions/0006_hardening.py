"""revocable sessions, opt-out confirmation, simulator shoppers, failed attempts, coupon problems on orders

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:30:00
"""

from alembic import op
import sqlalchemy as sa
import models.base

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

OLD_ATTEMPT_STATUSES = ('claimed', 'deferred', 'sent', 'skipped')
NEW_ATTEMPT_STATUSES = (*OLD_ATTEMPT_STATUSES, 'failed')


def _status_check(values: tuple[str, ...]) -> str:
    return "status IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    op.create_table('user_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('user_agent', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_sessions_token_hash'))
    )
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_sessions_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opt_out_asked_at', models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('simulated', sa.Boolean(), server_default=sa.false(), nullable=False))

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('coupon_problem', sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f('ix_orders_coupon_problem'), ['coupon_problem'], unique=False)

    # The status enum is a VARCHAR with a CHECK constraint (portable): widen the constraint for 'failed'.
    with op.batch_alter_table('recovery_attempts', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_recovery_attempts_attemptstatus'), type_='check')
        batch_op.create_check_constraint('attemptstatus', _status_check(NEW_ATTEMPT_STATUSES))


def downgrade() -> None:
    # Failed attempts become skipped ones (their reason is kept): the old schema has no 'failed'.
    op.execute("UPDATE recovery_attempts SET status = 'skipped' WHERE status = 'failed'")
    with op.batch_alter_table('recovery_attempts', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_recovery_attempts_attemptstatus'), type_='check')
        batch_op.create_check_constraint('attemptstatus', _status_check(OLD_ATTEMPT_STATUSES))

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_coupon_problem'))
        batch_op.drop_column('coupon_problem')

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('simulated')
        batch_op.drop_column('opt_out_asked_at')

    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_sessions_user_id'))

    op.drop_table('user_sessions')
