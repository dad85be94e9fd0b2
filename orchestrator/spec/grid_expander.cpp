// Expanding a sweep's grid into jobs: the cartesian product (or the trials of a random/sobol
// search), linked values, exclude, include, the LoRA scale and the hash of each job, and the
// flagging of duplicate points.
#include <cmath>
#include <cstdio>
#include <unordered_map>

#include "orchestrator/spec/job_identity.h"
#include "orchestrator/spec/sampler.h"
#include "orchestrator/spec/sweep_spec.h"

namespace sweep {
namespace {

using json = nlohmann::json;

// A sweep file's jobs are held in memory whole (params resolved, hashed, and in `sweep plan` each
// job's memory estimated): about 170 us and 9 KB a job, so 10,000 plan in under 2 s and 100 MB,
// where a million took a minute and 4.8 GB. A bigger grid is a typo, or several sweep files.
constexpr size_t kMaxPoints = 10000;

double lora_scale_of(const json& params) {
  const double alpha = params.at("lora_alpha").get<double>();
  const double r = params.at("lora_r").get<double>();
  return params.value("use_rslora", false) ? alpha / std::sqrt(r) : alpha / r;
}

bool matches(const json& entry, const json& params) {
  for (auto it = entry.begin(); it != entry.end(); ++it) {
    const json& value = params.at(it.key());
    bool any = false;
    for (const json& alternative : it.value()) any = any || alternative == value;
    if (!any) return false;
  }
  return true;
}

bool excluded(const SweepSpec& spec, const json& params) {
  for (const json& entry : spec.exclude)
    if (matches(entry, params)) return true;
  return false;
}

json base_params(const SweepSpec& spec) {
  json params = normalise_params(default_train_params());
  for (auto it = spec.train.begin(); it != spec.train.end(); ++it) params[it.key()] = it.value();
  return params;
}

// Position of each linked axis's base axis (-1 for plain axes).
std::vector<int> link_targets(const SweepSpec& spec) {
  std::vector<int> targets(spec.grid.size(), -1);
  for (size_t i = 0; i < spec.grid.size(); ++i) {
    if (!spec.grid[i].linked()) continue;
    for (size_t j = 0; j < spec.grid.size(); ++j)
      if (spec.grid[j].key == spec.grid[i].times) targets[i] = static_cast<int>(j);
  }
  return targets;
}

// The params of the grid point at `pos` (one value index per axis).
json point_params(const SweepSpec& spec, const json& base, const std::vector<int>& targets,
                  const std::vector<size_t>& pos) {
  json params = base;
  for (size_t i = 0; i < spec.grid.size(); ++i) {
    const GridAxis& axis = spec.grid[i];
    const json& v = axis.values[pos[i]];
    if (!axis.linked()) {
      params[axis.key] = v;
      continue;
    }
    const GridAxis& target = spec.grid[targets[i]];
    double product = v.get<double>() * target.values[pos[targets[i]]].get<double>();
    params[axis.key] = normalise_param_value(*find_param_spec(axis.key), product);
  }
  return params;
}

// Advances `pos` like an odometer, the last axis fastest; false after the last point.
bool next_position(const std::vector<size_t>& shape, std::vector<size_t>& pos) {
  for (size_t i = shape.size(); i-- > 0;) {
    if (++pos[i] < shape[i]) return true;
    pos[i] = 0;
  }
  return false;
}

// A job before hashing: its index and its resolved params.
struct Point {
  int index;
  json params;
};

std::vector<Point> grid_points(const SweepSpec& spec, const json& base, size_t points) {
  const std::vector<size_t> shape = grid_shape(spec);
  const std::vector<int> targets = link_targets(spec);
  std::vector<Point> all;
  all.reserve(points + spec.include.size());
  std::vector<size_t> pos(shape.size(), 0);
  do {
    json params = point_params(spec, base, targets, pos);
    if (!excluded(spec, params)) all.push_back({static_cast<int>(all.size()), std::move(params)});
  } while (next_position(shape, pos));
  return all;
}

// Trials 0 .. n_trials-1 of a random/sobol search; an excluded trial leaves a gap in the
// indices, so that trial i has index i however the exclude list changes.
std::vector<Point> sampled_points(const SweepSpec& spec, const json& base) {
  std::unique_ptr<Sampler> sampler = make_sampler(spec);
  std::vector<Point> all;
  all.reserve(spec.search.n_trials + spec.include.size());
  for (int trial = 0; trial < spec.search.n_trials; ++trial) {
    json params = base;
    const json point = sampler->ask(trial);
    for (auto it = point.begin(); it != point.end(); ++it) params[it.key()] = it.value();
    if (!excluded(spec, params)) all.push_back({trial, std::move(params)});
  }
  return all;
}

std::vector<ExpandedJob> to_jobs(const SweepSpec& spec, std::vector<Point>& all) {
  std::vector<ExpandedJob> jobs;
  jobs.reserve(all.size());
  std::unordered_map<std::string, size_t> first_with_hash;
  const std::string prefix = identity_prefix(spec);
  for (Point& point : all) {
    ExpandedJob job;
    job.hash = job_hash_with_prefix(prefix, point.params);  // normalised by construction
    job.index = point.index;
    job.lora_scale = lora_scale_of(point.params);
    if (!first_with_hash.emplace(job.hash, jobs.size()).second) job.duplicate_of = job.hash;
    job.params = std::move(point.params);
    jobs.push_back(std::move(job));
  }
  return jobs;
}

}  // namespace

std::vector<size_t> grid_shape(const SweepSpec& spec) {
  std::vector<size_t> shape;
  for (const GridAxis& axis : spec.grid) shape.push_back(axis.values.size());
  return shape;
}

std::string expansion_summary(const SweepSpec& spec, const std::vector<ExpandedJob>& jobs) {
  size_t duplicates = 0;
  for (const ExpandedJob& job : jobs) duplicates += job.is_duplicate() ? 1 : 0;
  std::string s = std::to_string(jobs.size()) + (jobs.size() == 1 ? " job (" : " jobs (") +
                  std::to_string(duplicates) + (duplicates == 1 ? " duplicate) " : " duplicates) ");
  size_t points = 1;
  if (spec.search.sampled()) {
    const size_t n = static_cast<size_t>(spec.search.n_trials);
    points = n;
    s += "from " + std::to_string(n) + (n == 1 ? " trial (" : " trials (") +
         to_string(spec.search.type) + ", seed " + std::to_string(spec.search.seed) + ") over " +
         std::to_string(spec.grid.size()) + (spec.grid.size() == 1 ? " key" : " keys");
  } else {
    std::string shape;
    for (size_t n : grid_shape(spec)) {
      points *= n;
      shape += (shape.empty() ? "" : "×") + std::to_string(n);
    }
    s += shape.empty() ? "from no grid (train: only)" : "from a " + shape + " grid";
  }
  const size_t excluded = points + spec.include.size() - jobs.size();
  if (!spec.include.empty()) s += ", " + std::to_string(spec.include.size()) + " included";
  if (excluded > 0) s += ", " + std::to_string(excluded) + " excluded";
  return s;
}

Result<std::vector<ExpandedJob>> expand_grid(const SweepSpec& spec) {
  size_t points = 1;
  if (!spec.search.sampled()) {
    double all_points = 1;  // the whole product, for the message (no overflow)
    for (size_t n : grid_shape(spec)) {
      points *= n;
      all_points *= static_cast<double>(n);
      if (points > kMaxPoints) points = kMaxPoints + 1;
    }
    if (points > kMaxPoints) {
      char count[32];
      std::snprintf(count, sizeof count, "%.15g", all_points);
      return make_error(ErrorKind::kUser,
                        spec.source_path + ": the grid has " + count + " points, more than the " +
                            std::to_string(kMaxPoints) + " a sweep file may have",
                        "shorten the grid lists, split the sweep into several files, or sample "
                        "it with search: {type: random, n_trials: N}");
    }
  }
  const json base = base_params(spec);
  std::vector<Point> all =
      spec.search.sampled() ? sampled_points(spec, base) : grid_points(spec, base, points);
  // Include points follow the grid (or the trials: numbered from n_trials on).
  int next_index = spec.search.sampled() ? spec.search.n_trials : static_cast<int>(all.size());
  for (const json& point : spec.include) {
    json params = base;
    for (auto it = point.begin(); it != point.end(); ++it) params[it.key()] = it.value();
    all.push_back({next_index++, std::move(params)});
  }
  if (all.empty())
    return make_error(ErrorKind::kUser,
                      spec.source_path + (spec.search.sampled() ? ": every trial is excluded"
                                                                : ": every grid point is excluded"),
                      "loosen the exclude: entries or add include: points");
  return to_jobs(spec, all);
}

}  // namespace sweep
