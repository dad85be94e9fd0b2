#include "db/schema.h"

namespace sweep {

namespace {

// Version 1. Metrics and eval metrics are one row per value, keyed (job_id, name, step) WITHOUT
// ROWID, so that a loss curve or a job's best eval is an index range scan even at 10M rows.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE sweeps (
  id               INTEGER PRIMARY KEY,
  name             TEXT NOT NULL UNIQUE,
  spec_path        TEXT NOT NULL DEFAULT '',
  spec_json        TEXT NOT NULL DEFAULT '{}',
  objective_metric TEXT NOT NULL DEFAULT 'val_loss',
  objective_mode   TEXT NOT NULL DEFAULT 'min',
  created_at       REAL NOT NULL,
  updated_at       REAL NOT NULL
);

CREATE TABLE jobs (
  id            INTEGER PRIMARY KEY,
  sweep_id      INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
  hash          TEXT NOT NULL,
  grid_index    INTEGER NOT NULL,
  params        TEXT NOT NULL,
  lora_scale    REAL,
  state         TEXT NOT NULL DEFAULT 'pending',
  attempt       INTEGER NOT NULL DEFAULT 0,
  pid           INTEGER,
  host          TEXT NOT NULL DEFAULT '',
  device        TEXT NOT NULL DEFAULT '',
  run_dir       TEXT NOT NULL DEFAULT '',
  created_at    REAL NOT NULL,
  started_at    REAL,
  finished_at   REAL,
  exit_code     INTEGER,
  error         TEXT NOT NULL DEFAULT '',
  events_offset INTEGER NOT NULL DEFAULT 0,
  last_seq      INTEGER NOT NULL DEFAULT 0,
  info          TEXT NOT NULL DEFAULT '{}',
  UNIQUE (sweep_id, hash)
);
CREATE INDEX jobs_by_sweep_state ON jobs (sweep_id, state);

CREATE TABLE attempts (
  job_id      INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  attempt     INTEGER NOT NULL,
  pid         INTEGER,
  host        TEXT NOT NULL DEFAULT '',
  device      TEXT NOT NULL DEFAULT '',
  run_dir     TEXT NOT NULL DEFAULT '',
  started_at  REAL NOT NULL,
  finished_at REAL,
  state       TEXT NOT NULL DEFAULT 'running',
  exit_code   INTEGER,
  error       TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (job_id, attempt)
) WITHOUT ROWID;

CREATE TABLE metrics (
  job_id  INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  name    TEXT NOT NULL,
  step    INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  value   REAL,
  PRIMARY KEY (job_id, name, step)
) WITHOUT ROWID;

CREATE TABLE eval_metrics (
  job_id  INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  name    TEXT NOT NULL,
  step    INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  value   REAL,
  PRIMARY KEY (job_id, name, step)
) WITHOUT ROWID;
CREATE INDEX eval_metrics_by_step ON eval_metrics (job_id, step);
CREATE INDEX eval_metrics_by_value ON eval_metrics (job_id, name, value);

CREATE TABLE checkpoints (
  id         INTEGER PRIMARY KEY,
  job_id     INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  step       INTEGER NOT NULL,
  path       TEXT NOT NULL,
  metrics    TEXT NOT NULL DEFAULT '{}',
  kept       INTEGER NOT NULL DEFAULT 1,
  created_at REAL NOT NULL,
  deleted_at REAL,
  UNIQUE (job_id, path)
);
CREATE INDEX checkpoints_by_step ON checkpoints (job_id, step);

-- One row per evaluation, its metrics as a JSON object (for people reading the database).
CREATE VIEW evals AS
SELECT job_id, step, MAX(attempt) AS attempt, json_group_object(name, value) AS metrics
FROM eval_metrics GROUP BY job_id, step;

-- Per sweep, every succeeded or running job with an eval of the sweep's objective metric: its
-- best value (min or max per objective_mode), the first step that reached it, and the checkpoint
-- kept at that step. rank 1 is the best job of the sweep.
CREATE VIEW leaderboard AS
WITH best AS (
  SELECT j.sweep_id, j.id AS job_id, s.objective_metric AS metric, s.objective_mode AS mode,
         CASE s.objective_mode WHEN 'max' THEN MAX(e.value) ELSE MIN(e.value) END AS objective
  FROM jobs j
  JOIN sweeps s ON s.id = j.sweep_id
  JOIN eval_metrics e ON e.job_id = j.id AND e.name = s.objective_metric
  WHERE j.state IN ('succeeded', 'running')
  GROUP BY j.id
),
at_step AS (
  SELECT b.*,
         (SELECT MIN(e.step) FROM eval_metrics e
          WHERE e.job_id = b.job_id AND e.name = b.metric AND e.value = b.objective) AS best_step
  FROM best b
)
SELECT a.sweep_id,
       s.name AS sweep,
       RANK() OVER (PARTITION BY a.sweep_id
                    ORDER BY CASE a.mode WHEN 'max' THEN -a.objective ELSE a.objective END) AS rank,
       a.job_id, j.hash, j.state,
       json_extract(j.params, '$.lora_r') AS lora_r,
       json_extract(j.params, '$.lora_alpha') AS lora_alpha,
       json_extract(j.params, '$.learning_rate') AS learning_rate,
       json_extract(j.params, '$.batch_size') AS batch_size,
       a.metric, a.mode, a.objective, a.best_step,
       (SELECT c.path FROM checkpoints c
        WHERE c.job_id = a.job_id AND c.step = a.best_step AND c.kept = 1
        ORDER BY c.id DESC LIMIT 1) AS checkpoint_path,
       j.run_dir, j.params
FROM at_step a
JOIN jobs j ON j.id = a.job_id
JOIN sweeps s ON s.id = a.sweep_id;
)sql";

// Version 2. The attempts `sweep retry` grants on top of the sweep file's `retries` get their own
// column; version 1 kept them as info.retry_base (the attempts used before the retry).
constexpr const char* kSchemaV2 = R"sql(
ALTER TABLE jobs ADD COLUMN extra_attempts INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET extra_attempts = json_extract(info, '$.retry_base'),
                info = json_remove(info, '$.retry_base')
WHERE json_valid(info) AND json_type(info, '$.retry_base') = 'integer';
)sql";

// Version 3. Early stopping and the tokens axis: metrics and eval rows carry the training samples
// and tokens seen when they were measured (so curves of jobs with different batch sizes compare
// on one axis), jobs may end `pruned`, every early-stopping decision is a row of `decisions`, and
// the leaderboard shows pruned jobs with the rung they reached.
constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE metrics ADD COLUMN samples_seen INTEGER;
ALTER TABLE metrics ADD COLUMN tokens_seen INTEGER;
ALTER TABLE eval_metrics ADD COLUMN samples_seen INTEGER;
ALTER TABLE eval_metrics ADD COLUMN tokens_seen INTEGER;
-- Rows written before version 3: the progress metrics samples_seen/tokens_seen of the same step.
UPDATE metrics SET
  samples_seen = (SELECT CAST(m.value AS INTEGER) FROM metrics m
                  WHERE m.job_id = metrics.job_id AND m.step = metrics.step
                    AND m.name = 'samples_seen'),
  tokens_seen = (SELECT CAST(m.value AS INTEGER) FROM metrics m
                 WHERE m.job_id = metrics.job_id AND m.step = metrics.step
                   AND m.name = 'tokens_seen');
UPDATE eval_metrics SET
  samples_seen = (SELECT CAST(m.value AS INTEGER) FROM metrics m
                  WHERE m.job_id = eval_metrics.job_id AND m.step = eval_metrics.step
                    AND m.name = 'samples_seen'),
  tokens_seen = (SELECT CAST(m.value AS INTEGER) FROM metrics m
                 WHERE m.job_id = eval_metrics.job_id AND m.step = eval_metrics.step
                   AND m.name = 'tokens_seen');

CREATE TABLE decisions (
  id          INTEGER PRIMARY KEY,
  job_id      INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  rung        INTEGER NOT NULL,
  rung_tokens INTEGER NOT NULL,
  step        INTEGER NOT NULL,
  tokens_seen INTEGER NOT NULL,
  metric      TEXT NOT NULL,
  value       REAL NOT NULL,
  compared_to REAL,
  rank        INTEGER NOT NULL,
  peers       INTEGER NOT NULL,
  action      TEXT NOT NULL,
  rule        TEXT NOT NULL,
  decided_at  REAL NOT NULL,
  UNIQUE (job_id, rung)
);

DROP VIEW leaderboard;
CREATE VIEW leaderboard AS
WITH best AS (
  SELECT j.sweep_id, j.id AS job_id, s.objective_metric AS metric, s.objective_mode AS mode,
         CASE s.objective_mode WHEN 'max' THEN MAX(e.value) ELSE MIN(e.value) END AS objective
  FROM jobs j
  JOIN sweeps s ON s.id = j.sweep_id
  JOIN eval_metrics e ON e.job_id = j.id AND e.name = s.objective_metric
  WHERE j.state IN ('succeeded', 'pruned', 'running')
  GROUP BY j.id
),
at_step AS (
  SELECT b.*,
         (SELECT MIN(e.step) FROM eval_metrics e
          WHERE e.job_id = b.job_id AND e.name = b.metric AND e.value = b.objective) AS best_step
  FROM best b
)
SELECT a.sweep_id,
       s.name AS sweep,
       RANK() OVER (PARTITION BY a.sweep_id
                    ORDER BY CASE a.mode WHEN 'max' THEN -a.objective ELSE a.objective END) AS rank,
       a.job_id, j.hash, j.state,
       json_extract(j.params, '$.lora_r') AS lora_r,
       json_extract(j.params, '$.lora_alpha') AS lora_alpha,
       json_extract(j.params, '$.learning_rate') AS learning_rate,
       json_extract(j.params, '$.batch_size') AS batch_size,
       a.metric, a.mode, a.objective, a.best_step,
       (SELECT c.path FROM checkpoints c
        WHERE c.job_id = a.job_id AND c.step = a.best_step AND c.kept = 1
        ORDER BY c.id DESC LIMIT 1) AS checkpoint_path,
       j.run_dir, j.params,
       (SELECT MAX(d.rung) FROM decisions d WHERE d.job_id = a.job_id) AS rung
FROM at_step a
JOIN jobs j ON j.id = a.job_id
JOIN sweeps s ON s.id = a.sweep_id;
)sql";

// Version 4. Packed workers and kept predictions. `attempts.pack_id` groups the attempts that one
// worker process ran together (a number unique in the database, shared by the pack's attempts;
// NULL when the job ran alone); `predictions` keeps a few evaluation outputs beside their reference
// answers, so a report can show what a job answers at its best checkpoint.
constexpr const char* kSchemaV4 = R"sql(
ALTER TABLE attempts ADD COLUMN pack_id INTEGER;

CREATE TABLE predictions (
  job_id     INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  step       INTEGER NOT NULL,
  sample     INTEGER NOT NULL,
  sample_id  TEXT NOT NULL DEFAULT '',
  prompt     TEXT NOT NULL DEFAULT '',
  reference  TEXT NOT NULL DEFAULT '',
  prediction TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (job_id, step, sample)
) WITHOUT ROWID;
)sql";

// Version 5. Evidence that an adapter did something, and cluster executors.
// - The leaderboard ranks a job by its best evaluation *after* step 0 (step 0 is the base model,
//   never a job's best) and shows the base model's own score on the same val subset
//   (`base_objective`, the job's step-0 evaluation) and the `gain` over it, positive when the job
//   beat the base in the objective's direction.
// - `learning_checks`: the worker's check, a tenth of the way in, that the adapter moves (LoRA B
//   norm, LoRA gradient norm, train-loss change); a failed check shows as `not_learning`.
// - `attempts.executor_id`: the cluster's own id for an attempt (a Slurm job id); NULL for a
//   process on this machine.
// - A job may end `infeasible` (it cannot fit the device: not retried). States are plain text, so
//   the new state needs no column.
constexpr const char* kSchemaV5 = R"sql(
ALTER TABLE attempts ADD COLUMN executor_id TEXT;

CREATE TABLE learning_checks (
  job_id         INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
  step           INTEGER NOT NULL,
  passed         INTEGER NOT NULL,
  lora_b_norm    REAL,
  lora_grad_norm REAL,
  loss_first     REAL,
  loss_last      REAL,
  reason         TEXT NOT NULL DEFAULT '',
  checked_at     REAL NOT NULL
);

DROP VIEW leaderboard;
CREATE VIEW leaderboard AS
WITH best AS (
  SELECT j.sweep_id, j.id AS job_id, s.objective_metric AS metric, s.objective_mode AS mode,
         CASE s.objective_mode WHEN 'max' THEN MAX(e.value) ELSE MIN(e.value) END AS objective
  FROM jobs j
  JOIN sweeps s ON s.id = j.sweep_id
  JOIN eval_metrics e ON e.job_id = j.id AND e.name = s.objective_metric AND e.step > 0
  WHERE j.state IN ('succeeded', 'pruned', 'running')
  GROUP BY j.id
),
at_step AS (
  SELECT b.*,
         (SELECT MIN(e.step) FROM eval_metrics e
          WHERE e.job_id = b.job_id AND e.name = b.metric AND e.step > 0
            AND e.value = b.objective) AS best_step,
         (SELECT e.value FROM eval_metrics e
          WHERE e.job_id = b.job_id AND e.name = b.metric AND e.step = 0) AS base_objective
  FROM best b
)
SELECT a.sweep_id,
       s.name AS sweep,
       RANK() OVER (PARTITION BY a.sweep_id
                    ORDER BY CASE a.mode WHEN 'max' THEN -a.objective ELSE a.objective END) AS rank,
       a.job_id, j.hash, j.state,
       json_extract(j.params, '$.lora_r') AS lora_r,
       json_extract(j.params, '$.lora_alpha') AS lora_alpha,
       json_extract(j.params, '$.learning_rate') AS learning_rate,
       json_extract(j.params, '$.batch_size') AS batch_size,
       a.metric, a.mode, a.objective, a.best_step,
       (SELECT c.path FROM checkpoints c
        WHERE c.job_id = a.job_id AND c.step = a.best_step AND c.kept = 1
        ORDER BY c.id DESC LIMIT 1) AS checkpoint_path,
       j.run_dir, j.params,
       (SELECT MAX(d.rung) FROM decisions d WHERE d.job_id = a.job_id) AS rung,
       a.base_objective,
       CASE a.mode WHEN 'max' THEN a.objective - a.base_objective
                   ELSE a.base_objective - a.objective END AS gain,
       COALESCE((SELECT 1 - l.passed FROM learning_checks l WHERE l.job_id = a.job_id), 0)
         AS not_learning
FROM at_step a
JOIN jobs j ON j.id = a.job_id
JOIN sweeps s ON s.id = a.sweep_id;
)sql";

// Version 6. Results that stay fast at 100,000 jobs: what the leaderboard, `sweep best`,
// `sweep status` and budget caps need is kept up to date while rows are ingested, instead of
// being computed from 10,000,000 metric rows on every read.
// - `eval_best`: per job and eval metric, the best value after step 0 in both directions (the
//   first step that reached each) and the step-0 value (the base model's score), maintained by
//   the triggers below in the same transaction as the eval_metrics rows (a replaced row that was
//   the best is recomputed from eval_metrics). `trained` is 1 once the job has an eval of the
//   metric after step 0 (even one whose value is NULL, as the view has always counted it).
//   eval_best_by_min/max walk a sweep's jobs best first, so that the top of a leaderboard is read
//   without a sort of every job.
// - `job_progress`: per job, the largest step and tokens_seen of its metrics rows (what
//   compute_used adds up, without an index: a scan of one small row per job), written by
//   Store::add_metrics.
// - The leaderboard view reads eval_best; its columns and rows are those of version 5.
constexpr const char* kSchemaV6 = R"sql(
CREATE TABLE eval_best (
  job_id     INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  name       TEXT NOT NULL,
  sweep_id   INTEGER NOT NULL,
  trained    INTEGER NOT NULL DEFAULT 0,
  min_value  REAL,
  min_step   INTEGER,
  max_value  REAL,
  max_step   INTEGER,
  base_value REAL,
  PRIMARY KEY (job_id, name)
) WITHOUT ROWID;
CREATE INDEX eval_best_by_min ON eval_best (sweep_id, name, min_value);
CREATE INDEX eval_best_by_max ON eval_best (sweep_id, name, max_value);

CREATE TRIGGER eval_best_insert AFTER INSERT ON eval_metrics BEGIN
  INSERT INTO eval_best (job_id, name, sweep_id)
    SELECT NEW.job_id, NEW.name, j.sweep_id FROM jobs j WHERE j.id = NEW.job_id
    ON CONFLICT (job_id, name) DO NOTHING;
  UPDATE eval_best SET base_value = NEW.value
    WHERE NEW.step = 0 AND job_id = NEW.job_id AND name = NEW.name;
  -- The row just written replaced the best one's step: recompute that direction.
  UPDATE eval_best SET (min_value, min_step) = (
      SELECT e.value, e.step FROM eval_metrics e
      WHERE e.job_id = NEW.job_id AND e.name = NEW.name AND e.step > 0 AND e.value IS NOT NULL
      ORDER BY e.value, e.step LIMIT 1)
    WHERE NEW.step > 0 AND job_id = NEW.job_id AND name = NEW.name AND min_step = NEW.step;
  UPDATE eval_best SET (max_value, max_step) = (
      SELECT b.v, (SELECT MIN(e.step) FROM eval_metrics e
                   WHERE e.job_id = NEW.job_id AND e.name = NEW.name AND e.step > 0
                     AND e.value = b.v)
      FROM (SELECT e.value AS v FROM eval_metrics e
            WHERE e.job_id = NEW.job_id AND e.name = NEW.name AND e.step > 0
              AND e.value IS NOT NULL
            ORDER BY e.value DESC LIMIT 1) b)
    WHERE NEW.step > 0 AND job_id = NEW.job_id AND name = NEW.name AND max_step = NEW.step;
  -- Otherwise a better value, or the same value at an earlier step, takes over.
  UPDATE eval_best SET trained = 1
    WHERE NEW.step > 0 AND job_id = NEW.job_id AND name = NEW.name AND trained = 0;
  UPDATE eval_best SET
      min_step = CASE WHEN min_value IS NULL OR NEW.value < min_value
                        OR (NEW.value = min_value AND NEW.step < min_step)
                      THEN NEW.step ELSE min_step END,
      min_value = CASE WHEN min_value IS NULL OR NEW.value < min_value
                       THEN NEW.value ELSE min_value END,
      max_step = CASE WHEN max_value IS NULL OR NEW.value > max_value
                        OR (NEW.value = max_value AND NEW.step < max_step)
                      THEN NEW.step ELSE max_step END,
      max_value = CASE WHEN max_value IS NULL OR NEW.value > max_value
                       THEN NEW.value ELSE max_value END
    WHERE NEW.step > 0 AND NEW.value IS NOT NULL AND job_id = NEW.job_id AND name = NEW.name;
END;

INSERT INTO eval_best (job_id, name, sweep_id, trained, min_value, max_value, base_value)
  SELECT e.job_id, e.name, j.sweep_id, MAX(e.step > 0),
         MIN(CASE WHEN e.step > 0 THEN e.value END), MAX(CASE WHEN e.step > 0 THEN e.value END),
         MAX(CASE WHEN e.step = 0 THEN e.value END)
  FROM eval_metrics e JOIN jobs j ON j.id = e.job_id
  GROUP BY e.job_id, e.name;
UPDATE eval_best SET
  min_step = (SELECT MIN(e.step) FROM eval_metrics e WHERE e.job_id = eval_best.job_id
              AND e.name = eval_best.name AND e.step > 0 AND e.value = eval_best.min_value),
  max_step = (SELECT MIN(e.step) FROM eval_metrics e WHERE e.job_id = eval_best.job_id
              AND e.name = eval_best.name AND e.step > 0 AND e.value = eval_best.max_value);

-- `sweep status` lists the failed learning checks of a sweep without reading the passed ones.
CREATE INDEX learning_checks_failed ON learning_checks (job_id) WHERE passed = 0;

CREATE TABLE job_progress (
  job_id      INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
  sweep_id    INTEGER NOT NULL,
  step        INTEGER NOT NULL,
  tokens_seen INTEGER
);
INSERT INTO job_progress (job_id, sweep_id, step, tokens_seen)
  SELECT m.job_id, j.sweep_id, MAX(m.step), MAX(m.tokens_seen)
  FROM metrics m JOIN jobs j ON j.id = m.job_id GROUP BY m.job_id;

DROP VIEW leaderboard;
CREATE VIEW leaderboard AS
WITH best AS (
  SELECT j.sweep_id, j.id AS job_id, s.objective_metric AS metric, s.objective_mode AS mode,
         CASE s.objective_mode WHEN 'max' THEN b.max_value ELSE b.min_value END AS objective,
         CASE s.objective_mode WHEN 'max' THEN b.max_step ELSE b.min_step END AS best_step,
         b.base_value AS base_objective
  FROM jobs j
  JOIN sweeps s ON s.id = j.sweep_id
  JOIN eval_best b ON b.job_id = j.id AND b.name = s.objective_metric AND b.trained = 1
  WHERE j.state IN ('succeeded', 'pruned', 'running')
)
SELECT a.sweep_id,
       s.name AS sweep,
       RANK() OVER (PARTITION BY a.sweep_id
                    ORDER BY CASE a.mode WHEN 'max' THEN -a.objective ELSE a.objective END) AS rank,
       a.job_id, j.hash, j.state,
       json_extract(j.params, '$.lora_r') AS lora_r,
       json_extract(j.params, '$.lora_alpha') AS lora_alpha,
       json_extract(j.params, '$.learning_rate') AS learning_rate,
       json_extract(j.params, '$.batch_size') AS batch_size,
       a.metric, a.mode, a.objective, a.best_step,
       (SELECT c.path FROM checkpoints c
        WHERE c.job_id = a.job_id AND c.step = a.best_step AND c.kept = 1
        ORDER BY c.id DESC LIMIT 1) AS checkpoint_path,
       j.run_dir, j.params,
       (SELECT MAX(d.rung) FROM decisions d WHERE d.job_id = a.job_id) AS rung,
       a.base_objective,
       CASE a.mode WHEN 'max' THEN a.objective - a.base_objective
                   ELSE a.base_objective - a.objective END AS gain,
       COALESCE((SELECT 1 - l.passed FROM learning_checks l WHERE l.job_id = a.job_id), 0)
         AS not_learning
FROM best a
JOIN jobs j ON j.id = a.job_id
JOIN sweeps s ON s.id = a.sweep_id;
)sql";

// Version 7. `sweep status` at 100,000 jobs reads indexes, not every job:
// - job_progress.max_steps: the job's max_steps (from its params, written with the job's first
//   progress row), so that what early stopping saved on pruned jobs is summed from job_progress
//   alone;
// - eval_best.ranked: 1 while the job is in a ranked state (succeeded, pruned, running), kept by
//   two triggers (a new eval_best row, a job's change of state), and eval_counts: per sweep and
//   metric, the ranked jobs and those that beat the base model in either direction, kept by
//   triggers on eval_best (the leaderboard's footer and `sweep status` read one row);
// - jobs_by_sweep_state also orders by grid_index, so that the first N jobs in a state (the failed
//   jobs `sweep status` shows) are read without sorting all of them;
// - job_counts: the number of jobs per sweep and state, and sweep_progress: the sum over a sweep's
//   jobs of their job_progress step and tokens_seen (compute used), each kept by triggers (a fresh
//   process counting 100,000 index entries spent 30 ms faulting their pages in).
constexpr const char* kSchemaV7 = R"sql(
ALTER TABLE job_progress ADD COLUMN max_steps INTEGER;
UPDATE job_progress SET max_steps = (
  SELECT CAST(json_extract(j.params, '$.max_steps') AS INTEGER) FROM jobs j
  WHERE j.id = job_progress.job_id);

ALTER TABLE eval_best ADD COLUMN ranked INTEGER NOT NULL DEFAULT 0;
UPDATE eval_best SET ranked = (
  SELECT j.state IN ('succeeded', 'pruned', 'running') FROM jobs j WHERE j.id = eval_best.job_id);
CREATE TRIGGER eval_best_ranked_insert AFTER INSERT ON eval_best BEGIN
  UPDATE eval_best SET ranked = (
      SELECT j.state IN ('succeeded', 'pruned', 'running') FROM jobs j WHERE j.id = NEW.job_id)
    WHERE job_id = NEW.job_id AND name = NEW.name;
END;
CREATE TRIGGER eval_best_ranked_state AFTER UPDATE OF state ON jobs
  WHEN (OLD.state IN ('succeeded', 'pruned', 'running'))
       IS NOT (NEW.state IN ('succeeded', 'pruned', 'running')) BEGIN
  UPDATE eval_best SET ranked = NEW.state IN ('succeeded', 'pruned', 'running')
    WHERE job_id = NEW.id;
END;
CREATE TABLE eval_counts (
  sweep_id   INTEGER NOT NULL,
  name       TEXT NOT NULL,
  ranked_min INTEGER NOT NULL DEFAULT 0,
  beat_min   INTEGER NOT NULL DEFAULT 0,
  ranked_max INTEGER NOT NULL DEFAULT 0,
  beat_max   INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (sweep_id, name)
) WITHOUT ROWID;
INSERT INTO eval_counts (sweep_id, name, ranked_min, beat_min, ranked_max, beat_max)
  SELECT sweep_id, name,
         SUM(ranked AND trained AND min_value IS NOT NULL),
         SUM(ranked AND trained AND COALESCE(base_value - min_value > 0, 0)),
         SUM(ranked AND trained AND max_value IS NOT NULL),
         SUM(ranked AND trained AND COALESCE(max_value - base_value > 0, 0))
  FROM eval_best GROUP BY sweep_id, name;
CREATE TRIGGER eval_counts_insert AFTER INSERT ON eval_best BEGIN
  INSERT INTO eval_counts (sweep_id, name) VALUES (NEW.sweep_id, NEW.name)
    ON CONFLICT (sweep_id, name) DO NOTHING;
  UPDATE eval_counts SET
      ranked_min = ranked_min + (NEW.ranked AND NEW.trained AND NEW.min_value IS NOT NULL),
      beat_min = beat_min + (NEW.ranked AND NEW.trained
                             AND COALESCE(NEW.base_value - NEW.min_value > 0, 0)),
      ranked_max = ranked_max + (NEW.ranked AND NEW.trained AND NEW.max_value IS NOT NULL),
      beat_max = beat_max + (NEW.ranked AND NEW.trained
                             AND COALESCE(NEW.max_value - NEW.base_value > 0, 0))
    WHERE sweep_id = NEW.sweep_id AND name = NEW.name;
END;
CREATE TRIGGER eval_counts_update AFTER UPDATE ON eval_best BEGIN
  -- The row may not exist yet when this runs before eval_counts_insert of the same new row.
  INSERT INTO eval_counts (sweep_id, name) VALUES (NEW.sweep_id, NEW.name)
    ON CONFLICT (sweep_id, name) DO NOTHING;
  UPDATE eval_counts SET
      ranked_min = ranked_min - (OLD.ranked AND OLD.trained AND OLD.min_value IS NOT NULL)
                              + (NEW.ranked AND NEW.trained AND NEW.min_value IS NOT NULL),
      beat_min = beat_min - (OLD.ranked AND OLD.trained
                             AND COALESCE(OLD.base_value - OLD.min_value > 0, 0))
                          + (NEW.ranked AND NEW.trained
                             AND COALESCE(NEW.base_value - NEW.min_value > 0, 0)),
      ranked_max = ranked_max - (OLD.ranked AND OLD.trained AND OLD.max_value IS NOT NULL)
                              + (NEW.ranked AND NEW.trained AND NEW.max_value IS NOT NULL),
      beat_max = beat_max - (OLD.ranked AND OLD.trained
                             AND COALESCE(OLD.max_value - OLD.base_value > 0, 0))
                          + (NEW.ranked AND NEW.trained
                             AND COALESCE(NEW.max_value - NEW.base_value > 0, 0))
    WHERE sweep_id = NEW.sweep_id AND name = NEW.name;
END;
CREATE TRIGGER eval_counts_delete AFTER DELETE ON eval_best BEGIN
  UPDATE eval_counts SET
      ranked_min = ranked_min - (OLD.ranked AND OLD.trained AND OLD.min_value IS NOT NULL),
      beat_min = beat_min - (OLD.ranked AND OLD.trained
                             AND COALESCE(OLD.base_value - OLD.min_value > 0, 0)),
      ranked_max = ranked_max - (OLD.ranked AND OLD.trained AND OLD.max_value IS NOT NULL),
      beat_max = beat_max - (OLD.ranked AND OLD.trained
                             AND COALESCE(OLD.max_value - OLD.base_value > 0, 0))
    WHERE sweep_id = OLD.sweep_id AND name = OLD.name;
END;

DROP INDEX jobs_by_sweep_state;
CREATE INDEX jobs_by_sweep_state ON jobs (sweep_id, state, grid_index);

CREATE TABLE job_counts (
  sweep_id INTEGER NOT NULL,
  state    TEXT NOT NULL,
  n        INTEGER NOT NULL,
  PRIMARY KEY (sweep_id, state)
) WITHOUT ROWID;
INSERT INTO job_counts (sweep_id, state, n)
  SELECT sweep_id, state, COUNT(*) FROM jobs GROUP BY sweep_id, state;
CREATE TRIGGER job_counts_insert AFTER INSERT ON jobs BEGIN
  INSERT INTO job_counts (sweep_id, state, n) VALUES (NEW.sweep_id, NEW.state, 1)
    ON CONFLICT (sweep_id, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER job_counts_delete AFTER DELETE ON jobs BEGIN
  UPDATE job_counts SET n = n - 1 WHERE sweep_id = OLD.sweep_id AND state = OLD.state;
END;
CREATE TRIGGER job_counts_update AFTER UPDATE OF sweep_id, state ON jobs
  WHEN OLD.sweep_id IS NOT NEW.sweep_id OR OLD.state IS NOT NEW.state BEGIN
  UPDATE job_counts SET n = n - 1 WHERE sweep_id = OLD.sweep_id AND state = OLD.state;
  INSERT INTO job_counts (sweep_id, state, n) VALUES (NEW.sweep_id, NEW.state, 1)
    ON CONFLICT (sweep_id, state) DO UPDATE SET n = n + 1;
END;

CREATE TABLE sweep_progress (
  sweep_id INTEGER PRIMARY KEY,
  steps    INTEGER NOT NULL,
  tokens   INTEGER NOT NULL
);
INSERT INTO sweep_progress (sweep_id, steps, tokens)
  SELECT sweep_id, SUM(step), COALESCE(SUM(tokens_seen), 0) FROM job_progress GROUP BY sweep_id;
CREATE TRIGGER sweep_progress_insert AFTER INSERT ON job_progress BEGIN
  INSERT INTO sweep_progress (sweep_id, steps, tokens)
    VALUES (NEW.sweep_id, NEW.step, COALESCE(NEW.tokens_seen, 0))
    ON CONFLICT (sweep_id) DO UPDATE SET steps = steps + excluded.steps,
                                         tokens = tokens + excluded.tokens;
END;
CREATE TRIGGER sweep_progress_update AFTER UPDATE OF step, tokens_seen ON job_progress
  WHEN OLD.step IS NOT NEW.step OR OLD.tokens_seen IS NOT NEW.tokens_seen BEGIN
  UPDATE sweep_progress SET
      steps = steps + NEW.step - OLD.step,
      tokens = tokens + COALESCE(NEW.tokens_seen, 0) - COALESCE(OLD.tokens_seen, 0)
    WHERE sweep_id = NEW.sweep_id;
END;
CREATE TRIGGER sweep_progress_delete AFTER DELETE ON job_progress BEGIN
  UPDATE sweep_progress SET steps = steps - OLD.step,
                            tokens = tokens - COALESCE(OLD.tokens_seen, 0)
    WHERE sweep_id = OLD.sweep_id;
END;
)sql";

}  // namespace

const std::vector<Migration>& schema_migrations() {
  static const std::vector<Migration> kMigrations = {
      {1, kSchemaV1}, {2, kSchemaV2}, {3, kSchemaV3}, {4, kSchemaV4},
      {5, kSchemaV5}, {6, kSchemaV6}, {7, kSchemaV7},
  };
  return kMigrations;
}

int latest_schema_version() { return schema_migrations().back().version; }

}  // namespace sweep
