"""Boxes, tasks, each Box's WBS and dependencies, field and dependency mappings, sync state

Revision ID: 0005
Revises: 0004

New tables only, every tenant-owned one keyed and indexed by tenant first.
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None
# Additive (new tables): a release at 0004 keeps serving against it.
min_code_revision = "0004"


def upgrade() -> None:
    op.create_table('app_releases',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('release', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_app_releases'))
    )
    op.create_table('box_types',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_box_types_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'name', name=op.f('pk_box_types'))
    )
    op.create_table('boxes',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('scope_type', sa.String(length=16), nullable=False),
    sa.Column('parent_id', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=True),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('scope_owner', sa.String(length=128), nullable=False),
    sa.Column('scope_projects', sa.JSON(), nullable=False),
    sa.Column('scope_jql', sa.Text(), nullable=True),
    sa.Column('scope_filter_id', sa.String(length=32), nullable=True),
    sa.Column('builders', sa.JSON(), nullable=False),
    sa.Column('task_mode', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('needs_full_sync', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('open_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id', 'parent_id'], ['boxes.tenant_id', 'boxes.id'], name='fk_boxes_parent'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_boxes_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_boxes'))
    )
    op.create_index('ix_boxes_tenant_parent', 'boxes', ['tenant_id', 'parent_id'], unique=False)
    op.create_table('dependency_mappings',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('type', sa.String(length=8), nullable=False),
    sa.Column('link_type_id', sa.String(length=32), nullable=False),
    sa.Column('reversed', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_dependency_mappings_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'connection_id', 'type', name=op.f('pk_dependency_mappings'))
    )
    op.create_table('field_mappings',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('project_key', sa.String(length=64), nullable=False),
    sa.Column('start_field', sa.String(length=255), nullable=True),
    sa.Column('end_field', sa.String(length=255), nullable=True),
    sa.Column('baseline_start_field', sa.String(length=255), nullable=True),
    sa.Column('baseline_end_field', sa.String(length=255), nullable=True),
    sa.Column('progress_field', sa.String(length=255), nullable=True),
    sa.Column('task_mode_field', sa.String(length=255), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_field_mappings_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'connection_id', 'project_key', name=op.f('pk_field_mappings'))
    )
    op.create_table('tasks',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('issue_id', sa.BigInteger(), nullable=False),
    sa.Column('issue_key', sa.String(length=64), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('issue_type', sa.String(length=255), nullable=False),
    sa.Column('hierarchy_level', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.BigInteger(), nullable=False),
    sa.Column('project_key', sa.String(length=64), nullable=False),
    sa.Column('project_name', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=255), nullable=False),
    sa.Column('status_category', sa.String(length=32), nullable=False),
    sa.Column('assignee', sa.String(length=128), nullable=True),
    sa.Column('assignee_name', sa.String(length=255), nullable=True),
    sa.Column('parent_issue_id', sa.BigInteger(), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=True),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('baseline_start', sa.Date(), nullable=True),
    sa.Column('baseline_end', sa.Date(), nullable=True),
    sa.Column('progress', sa.Float(), nullable=True),
    sa.Column('task_mode', sa.String(length=16), nullable=False),
    sa.Column('jira_updated', sa.String(length=40), nullable=False),
    sa.Column('versions', sa.JSON(), nullable=False),
    sa.Column('sprints', sa.JSON(), nullable=False),
    sa.Column('components', sa.JSON(), nullable=False),
    sa.Column('links', sa.JSON(), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tasks_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'connection_id', 'issue_id', name=op.f('pk_tasks'))
    )
    op.create_table('box_dependencies',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('box_id', sa.BigInteger(), nullable=False),
    sa.Column('connection_id', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('link_id', sa.BigInteger(), nullable=False),
    sa.Column('from_issue_id', sa.BigInteger(), nullable=False),
    sa.Column('to_issue_id', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.String(length=8), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'box_id'], ['boxes.tenant_id', 'boxes.id'], name='fk_box_dependencies_box', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_box_dependencies_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'box_id', 'connection_id', 'link_id', name=op.f('pk_box_dependencies'))
    )
    op.create_table('box_syncs',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('box_id', sa.BigInteger(), nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=True),
    sa.Column('done', sa.Integer(), server_default='0', nullable=False),
    sa.Column('total', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('triggered_by', sa.String(length=128), nullable=True),
    sa.Column('trigger', sa.String(length=16), nullable=True),
    sa.Column('read_as', sa.String(length=128), nullable=True),
    sa.Column('counts', sa.JSON(), nullable=True),
    sa.Column('continue_on_corrupted_index', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('synced_since', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id', 'box_id'], ['boxes.tenant_id', 'boxes.id'], name='fk_box_syncs_box', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_box_syncs_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'box_id', name=op.f('pk_box_syncs'))
    )
    op.create_table('wbs_nodes',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('box_id', sa.BigInteger(), nullable=False),
    sa.Column('node_id', sa.String(length=255), nullable=False),
    sa.Column('parent_node_id', sa.String(length=255), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('connection_id', sa.BigInteger(), nullable=True),
    sa.Column('issue_id', sa.BigInteger(), nullable=True),
    sa.Column('group_id', sa.BigInteger(), nullable=True),
    sa.Column('label', sa.String(length=255), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=True),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id', 'box_id'], ['boxes.tenant_id', 'boxes.id'], name='fk_wbs_nodes_box', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_wbs_nodes_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'box_id', 'node_id', name=op.f('pk_wbs_nodes'))
    )
    op.create_index('ix_wbs_nodes_tenant_issue', 'wbs_nodes', ['tenant_id', 'connection_id', 'issue_id'], unique=False)
    op.create_index('ix_wbs_nodes_tenant_parent', 'wbs_nodes', ['tenant_id', 'box_id', 'parent_node_id'], unique=False)


def downgrade() -> None:

    op.drop_index('ix_wbs_nodes_tenant_parent', table_name='wbs_nodes')
    op.drop_index('ix_wbs_nodes_tenant_issue', table_name='wbs_nodes')
    op.drop_table('wbs_nodes')
    op.drop_table('box_syncs')
    op.drop_table('box_dependencies')
    op.drop_table('tasks')
    op.drop_table('field_mappings')
    op.drop_table('dependency_mappings')
    op.drop_index('ix_boxes_tenant_parent', table_name='boxes')
    op.drop_table('boxes')
    op.drop_table('box_types')
    op.drop_table('app_releases')
