-- iofold database schema v1.0 (Cloudflare D1 / SQLite)
-- 10 tables, 1 view and the indexes below. Ids are prefixed TEXT keys, timestamps TEXT, booleans 0/1, JSON as TEXT.

CREATE TABLE users (
  id TEXT PRIMARY KEY,
  email TEXT UNIQUE NOT NULL,
  name TEXT,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  updated_at DATETIME DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE workspaces (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  updated_at DATETIME DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE workspace_members (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'member')),
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  UNIQUE(workspace_id, user_id)
);

CREATE TABLE integrations (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  platform TEXT NOT NULL CHECK (platform IN ('langfuse', 'langsmith', 'openai')),
  name TEXT NOT NULL,
  api_key_encrypted TEXT NOT NULL,
  base_url TEXT,
  config JSON,
  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'error')),
  error_message TEXT,
  last_synced_at DATETIME,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  updated_at DATETIME DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE traces (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
  trace_id TEXT NOT NULL,
  source TEXT NOT NULL,
  timestamp DATETIME NOT NULL,
  metadata JSON,
  steps JSON NOT NULL,
  input_preview TEXT,
  output_preview TEXT,
  step_count INTEGER NOT NULL DEFAULT 0,
  has_errors BOOLEAN NOT NULL DEFAULT 0,
  imported_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  UNIQUE(integration_id, trace_id)
);

CREATE TABLE eval_sets (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  description TEXT,
  minimum_examples INTEGER NOT NULL DEFAULT 5,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  UNIQUE(workspace_id, name)
);

CREATE TABLE feedback (
  id TEXT PRIMARY KEY,
  eval_set_id TEXT NOT NULL REFERENCES eval_sets(id) ON DELETE CASCADE,
  trace_id TEXT NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
  rating TEXT NOT NULL CHECK (rating IN ('positive', 'negative', 'neutral')),
  notes TEXT,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  UNIQUE(eval_set_id, trace_id)
);

CREATE TABLE evals (
  id TEXT PRIMARY KEY,
  eval_set_id TEXT NOT NULL REFERENCES eval_sets(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  description TEXT,
  version INTEGER NOT NULL DEFAULT 1,
  parent_eval_id TEXT REFERENCES evals(id) ON DELETE SET NULL,
  code TEXT NOT NULL,
  model_used TEXT NOT NULL,
  generation_prompt TEXT,
  custom_instructions TEXT,
  accuracy REAL,
  test_results JSON,
  training_trace_ids JSON,
  execution_count INTEGER NOT NULL DEFAULT 0,
  contradiction_count INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'archived')),
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  UNIQUE(eval_set_id, version)
);

CREATE TABLE eval_executions (
  id TEXT PRIMARY KEY,
  eval_id TEXT NOT NULL REFERENCES evals(id) ON DELETE CASCADE,
  trace_id TEXT NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
  result BOOLEAN NOT NULL,
  reason TEXT NOT NULL,
  execution_time_ms INTEGER NOT NULL,
  error TEXT,
  stdout TEXT,
  stderr TEXT,
  executed_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  UNIQUE(eval_id, trace_id)
);

CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  type TEXT NOT NULL CHECK (type IN ('import', 'generate', 'execute')),
  status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
  progress INTEGER NOT NULL DEFAULT 0,
  context JSON,
  result JSON,
  error TEXT,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  started_at DATETIME,
  completed_at DATETIME
);

-- Indexes
CREATE INDEX idx_integrations_workspace ON integrations(workspace_id);
CREATE INDEX idx_integrations_status ON integrations(status);
CREATE INDEX idx_integrations_workspace_platform ON integrations(workspace_id, platform);
CREATE INDEX idx_traces_workspace ON traces(workspace_id);
CREATE INDEX idx_traces_integration ON traces(integration_id);
CREATE INDEX idx_traces_timestamp ON traces(timestamp DESC);
CREATE INDEX idx_traces_source ON traces(source);
CREATE INDEX idx_traces_has_errors ON traces(has_errors);
CREATE INDEX idx_eval_sets_workspace ON eval_sets(workspace_id);
CREATE INDEX idx_feedback_eval_set ON feedback(eval_set_id);
CREATE INDEX idx_feedback_trace ON feedback(trace_id);
CREATE INDEX idx_feedback_rating ON feedback(rating);
CREATE INDEX idx_feedback_eval_set_rating ON feedback(eval_set_id, rating);
CREATE INDEX idx_evals_eval_set ON evals(eval_set_id);
CREATE INDEX idx_evals_status ON evals(status);
CREATE INDEX idx_evals_parent ON evals(parent_eval_id);
CREATE INDEX idx_eval_executions_eval ON eval_executions(eval_id);
CREATE INDEX idx_eval_executions_trace ON eval_executions(trace_id);
CREATE INDEX idx_eval_executions_eval_trace ON eval_executions(eval_id, trace_id);
CREATE INDEX idx_eval_executions_result ON eval_executions(result);
CREATE INDEX idx_eval_executions_executed_at ON eval_executions(executed_at DESC);
CREATE INDEX idx_jobs_workspace ON jobs(workspace_id);
CREATE INDEX idx_jobs_status ON jobs(status);
CREATE INDEX idx_jobs_type ON jobs(type);
CREATE INDEX idx_jobs_workspace_status ON jobs(workspace_id, status);
CREATE INDEX idx_jobs_created_at ON jobs(created_at DESC);

-- The comparison view, exactly as iofold defines it (its defects are documented in the data spec:
-- the join ignores the eval set, and errored executions count as fails).
CREATE VIEW eval_comparison AS
SELECT
  e.id AS execution_id,
  e.eval_id,
  e.trace_id,
  e.result AS predicted_result,
  e.reason AS predicted_reason,
  e.execution_time_ms,
  e.error AS execution_error,
  e.executed_at,
  f.id AS feedback_id,
  f.rating AS human_rating,
  f.notes AS feedback_notes,
  f.eval_set_id,
  CASE
    WHEN f.rating IS NULL THEN NULL
    WHEN f.rating = 'positive' AND e.result = 1 THEN 0
    WHEN f.rating = 'negative' AND e.result = 0 THEN 0
    WHEN f.rating = 'neutral' THEN 0
    ELSE 1
  END AS is_contradiction
FROM eval_executions e
LEFT JOIN feedback f ON f.trace_id = e.trace_id;
