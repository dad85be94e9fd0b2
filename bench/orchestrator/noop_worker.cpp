// A worker that does no work: started, `max_steps` progress events, one eval, finished.
#include <unistd.h>

#include "protocol/events.h"
#include "protocol/job_file.h"

int main(int argc, char** argv) {
  if (argc != 2) return 1;
  sweep::JobFile job = sweep::JobFile::read(argv[1]);
  int64_t steps = job.params.value("max_steps", int64_t{1});
  sweep::EventWriter events(job.events_path(), job.attempt);
  sweep::StartedEvent started;
  started.pid = ::getpid();
  events.emit(started);
  for (int64_t s = 1; s <= steps; ++s) {
    events.emit(sweep::ProgressEvent{s, {{"train_loss", 1.0 / static_cast<double>(s)}}});
  }
  events.emit(sweep::EvalEvent{steps, {{"val_loss", 1.0}}, std::nullopt, std::nullopt});
  sweep::FinishedEvent finished;
  finished.step = steps;
  events.emit(finished);
  return 0;
}
