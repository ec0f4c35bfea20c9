"""Tables of Boxes: the Boxes themselves, the tasks they hold, each Box's stored WBS and
dependencies, the site's field and dependency mappings, and admin-added Box types.

Every table is tenant-owned and keyed (and indexed) by tenant first, so one tenant's rows sit
together and the schema can be distributed by tenant (Citus) unchanged when one PostgreSQL is
outgrown. `connection_id` is 0 for the tenant's own (primary) Jira site; connected sites (more Jira
Cloud sites) use their connection's id, since issue ids repeat across sites.
"""
import sqlalchemy as sa

from boxsync.db import UTCDateTime, metadata, new_id
from boxsync.tenancy import owned_table

PRIMARY = 0  # connection_id of the tenant's own Jira site

# Box types an admin added beside the built-in ones (boxes/model.py BUILTIN_TYPES).
box_types = owned_table(
    "box_types",
    metadata,
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    key=("name",),
)

boxes = owned_table(
    "boxes",
    metadata,
    sa.Column("id", sa.BigInteger, default=new_id),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("scope_type", sa.String(16), nullable=False),  # own | sub | none; fixed at creation
    sa.Column("parent_id", sa.BigInteger),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_date", sa.Date),
    sa.Column("end_date", sa.Date),
    sa.Column("scope_owner", sa.String(128), nullable=False),  # Jira accountId the scope is read as
    sa.Column("scope_projects", sa.JSON, nullable=False),  # project keys
    sa.Column("scope_jql", sa.Text),
    sa.Column("scope_filter_id", sa.String(32)),
    sa.Column("builders", sa.JSON, nullable=False),  # ordered structure builder names
    sa.Column("task_mode", sa.String(16), nullable=False),
    sa.Column("created_by", sa.String(128)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # Set for every Box when a new release starts or the cache is cleared: the next sync of the
    # Box re-reads every issue instead of only those Jira says changed.
    sa.Column("needs_full_sync", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("open_count", sa.Integer, nullable=False, server_default="0"),  # "most used first"
    sa.Column("last_opened_at", UTCDateTime()),
    sa.ForeignKeyConstraint(["tenant_id", "parent_id"], ["boxes.tenant_id", "boxes.id"],
                            name="fk_boxes_parent"),
    sa.Index("ix_boxes_tenant_parent", "tenant_id", "parent_id"),
)

# One row per Jira issue per site of a tenant, shared by every Box that holds it.
tasks = owned_table(
    "tasks",
    metadata,
    sa.Column("connection_id", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("issue_id", sa.BigInteger, nullable=False),
    sa.Column("issue_key", sa.String(64), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("issue_type", sa.String(255), nullable=False),
    sa.Column("hierarchy_level", sa.Integer, nullable=False),
    sa.Column("project_id", sa.BigInteger, nullable=False),
    sa.Column("project_key", sa.String(64), nullable=False),
    sa.Column("project_name", sa.String(255), nullable=False),
    sa.Column("status", sa.String(255), nullable=False),
    sa.Column("status_category", sa.String(32), nullable=False),  # new | indeterminate | done
    sa.Column("assignee", sa.String(128)),
    sa.Column("assignee_name", sa.String(255)),
    sa.Column("parent_issue_id", sa.BigInteger),
    sa.Column("start_date", sa.Date),
    sa.Column("end_date", sa.Date),
    sa.Column("baseline_start", sa.Date),
    sa.Column("baseline_end", sa.Date),
    sa.Column("progress", sa.Float),  # percent, 0-100
    sa.Column("task_mode", sa.String(16), nullable=False),
    sa.Column("jira_updated", sa.String(40), nullable=False),  # Jira's `updated`, as Jira wrote it
    # What the structure builders group and link by: [[id, name, rank..., start, end], ...] and
    # links [[linkId, typeId, outwardIssueId, inwardIssueId], ...].
    sa.Column("versions", sa.JSON, nullable=False),
    sa.Column("sprints", sa.JSON, nullable=False),
    sa.Column("components", sa.JSON, nullable=False),
    sa.Column("links", sa.JSON, nullable=False),
    sa.Column("synced_at", UTCDateTime(), nullable=False),
    key=("connection_id", "issue_id"),
)

# Each Box's Work Breakdown Structure as last built: read by the panel and GET …/wbs without
# rebuilding. Issue nodes name their task; group nodes (project, version, …) carry their label.
wbs_nodes = owned_table(
    "wbs_nodes",
    metadata,
    sa.Column("box_id", sa.BigInteger, nullable=False),
    sa.Column("node_id", sa.String(255), nullable=False),
    sa.Column("parent_node_id", sa.String(255)),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("connection_id", sa.BigInteger),
    sa.Column("issue_id", sa.BigInteger),
    sa.Column("group_id", sa.BigInteger),
    sa.Column("label", sa.String(255)),
    sa.Column("start_date", sa.Date),
    sa.Column("end_date", sa.Date),
    sa.ForeignKeyConstraint(["tenant_id", "box_id"], ["boxes.tenant_id", "boxes.id"],
                            name="fk_wbs_nodes_box", ondelete="CASCADE"),
    # "Which Boxes hold this issue" (the panel) is one index lookup.
    sa.Index("ix_wbs_nodes_tenant_issue", "tenant_id", "connection_id", "issue_id"),
    # The panel reads an issue's siblings and children, not the whole tree.
    sa.Index("ix_wbs_nodes_tenant_parent", "tenant_id", "box_id", "parent_node_id"),
    key=("box_id", "node_id"),
)

# Dependencies between tasks of a Box, from issue links mapped as dependencies.
box_dependencies = owned_table(
    "box_dependencies",
    metadata,
    sa.Column("box_id", sa.BigInteger, nullable=False),
    sa.Column("connection_id", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("link_id", sa.BigInteger, nullable=False),
    sa.Column("from_issue_id", sa.BigInteger, nullable=False),  # the predecessor
    sa.Column("to_issue_id", sa.BigInteger, nullable=False),
    sa.Column("type", sa.String(8), nullable=False),  # FS SS FF SF soft
    sa.ForeignKeyConstraint(["tenant_id", "box_id"], ["boxes.tenant_id", "boxes.id"],
                            name="fk_box_dependencies_box", ondelete="CASCADE"),
    key=("box_id", "connection_id", "link_id"),
)

# Field mapping: one row for the site's general mapping (project_key '') and one per project
# override. Each value is a Jira field id; NULL means "not synchronized" (kept in BoxSync only).
field_mappings = owned_table(
    "field_mappings",
    metadata,
    sa.Column("connection_id", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("project_key", sa.String(64), nullable=False),
    sa.Column("start_field", sa.String(255)),
    sa.Column("end_field", sa.String(255)),
    sa.Column("baseline_start_field", sa.String(255)),
    sa.Column("baseline_end_field", sa.String(255)),
    sa.Column("progress_field", sa.String(255)),  # or "statusCategory"
    sa.Column("task_mode_field", sa.String(255)),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    key=("connection_id", "project_key"),
)

# Dependency mapping: each dependency type to one Jira issue-link type and direction.
dependency_mappings = owned_table(
    "dependency_mappings",
    metadata,
    sa.Column("connection_id", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("type", sa.String(8), nullable=False),
    sa.Column("link_type_id", sa.String(32), nullable=False),
    sa.Column("reversed", sa.Boolean, nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    key=("connection_id", "type"),
)
