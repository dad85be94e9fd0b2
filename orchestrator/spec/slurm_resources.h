// Reading the executor keys of a sweep file's `resources:` section (docs/sweep-file.md,
// docs/slurm.md): `executor: local|slurm` and, under Slurm, partition, gpus_per_job,
// cpus_per_job, mem, time_limit, account, qos, sbatch_args and max_submitted. Part of the
// sweep-file parser (sweep_spec.cpp).
#pragma once

#include <yaml-cpp/yaml.h>

#include "common/result.h"
#include "orchestrator/spec/sweep_spec.h"
#include "orchestrator/spec/yaml_reader.h"

namespace sweep {

// `node` is the resources mapping (its keys already checked). Errors name the key, e.g.
// "sweep.yaml:12:15: resources.time_limit = 4h: not a Slurm time".
Status read_slurm_resources(const YamlReader& yaml, const YAML::Node& node, ResourceSpec& out);

// True for a time Slurm's --time accepts: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS.
bool is_slurm_time(const std::string& text);
// True for a --mem value: an integer (megabytes) with an optional K/M/G/T suffix.
bool is_slurm_memory(const std::string& text);

}  // namespace sweep
