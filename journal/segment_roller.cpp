#include "journal/segment_roller.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include <fmt/format.h>

#include "journal/aligned_buffer.hpp"
#include "journal/segment_files.hpp"

namespace shmbus::journal {

namespace {

std::int64_t realtime_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

Result<void> SegmentRoller::adopt(RecoveredJournal& recovered) {
  if (recovered.current) {
    const ContinuedSegment& continued = *recovered.current;
    auto s = std::make_unique<OpenSegment>();
    s->first_sequence = continued.header.first_sequence;
    s->path = continued.path;
    s->index_path = join_path(options_.dir, index_file_name(s->first_sequence));
    auto fd = open_segment_file(s->path, options_.direct);
    if (!fd) return tl::unexpected(fd.error());
    s->fd = *fd;
    // The index is a hint; rebuilding it from the segment (the truth) also repairs it.
    auto index = write_index_file(s->index_path, s->first_sequence, continued.index);
    if (!index) return tl::unexpected(index.error());
    s->index_fd = *index;
    s->end_offset = continued.end;
    s->newest_data_ns = continued.last_data_time_ns;
    s->index_builder = continued.builder;
    s->allocate_index(options_.segment_bytes);
    s->index_entries_made = s->index_entries_submitted =
        std::min(continued.index.size(), s->index_capacity);
    std::copy_n(continued.index.begin(), s->index_entries_made, s->index_entries.get());
    current_ = s.get();
    open_.push_back(std::move(s));
  }
  finished_ = std::move(recovered.closed);
  next_segment_number_ = recovered.next_segment_number;
  return {};
}

void SegmentRoller::retire_current() {
  current_->retired = true;
  finished_.push_back(RetainedSegment{
      current_->first_sequence, current_->end_offset,
      current_->newest_data_ns != 0 ? current_->newest_data_ns : realtime_ns()});
  current_ = nullptr;
}

Result<void> SegmentRoller::start_segment(std::uint64_t first_sequence) {
  const bool had_segment = !finished_.empty();
  auto s = std::make_unique<OpenSegment>();
  s->first_sequence = first_sequence;
  s->path = join_path(options_.dir, segment_file_name(first_sequence));
  s->index_path = join_path(options_.dir, index_file_name(first_sequence));
  SegmentHeader header;
  make_segment_header(header, options_.channel, options_.incarnation, first_sequence,
                      next_segment_number_, realtime_ns());
  auto fd = create_segment_file(s->path, header, options_.direct,
                                options_.fsync != FsyncPolicy::never);
  if (!fd) return tl::unexpected(fd.error());
  s->fd = *fd;
  auto index = write_index_file(s->index_path, first_sequence, {});
  if (!index) {
    (void)remove_file(s->path);  // so the next attempt can create it again
    return tl::unexpected(index.error());
  }
  s->index_fd = *index;
  if (auto r = sync_directory(options_.dir); !r) {
    // The directory entry may not be durable: the same doubt as a failed fdatasync.
    errors_.stop(r.error());
    return tl::unexpected(r.error());
  }
  s->end_offset = kSegmentHeaderSize;
  s->allocate_index(options_.segment_bytes);
  current_ = s.get();
  open_.push_back(std::move(s));
  ++next_segment_number_;
  ++stats_.segments_created;
  if (had_segment) apply_retention();
  return {};
}

void SegmentRoller::apply_retention() {
  if (options_.retain_bytes == 0 && options_.retain_age.count() == 0) return;
  const std::size_t n = segments_to_delete(finished_, current_->end_offset, options_.retain_bytes,
                                           options_.retain_age, realtime_ns());
  std::size_t deleted = 0;
  for (; deleted < n; ++deleted) {
    const std::uint64_t first = finished_[deleted].first_sequence;
    auto r = remove_file(join_path(options_.dir, segment_file_name(first)));
    if (r) r = remove_file(join_path(options_.dir, index_file_name(first)));
    if (!r) {
      errors_.last_error = r.error().message;
      break;
    }
    ++stats_.segments_deleted;
  }
  finished_.erase(finished_.begin(), finished_.begin() + static_cast<std::ptrdiff_t>(deleted));
  if (deleted > 0) {
    if (auto r = sync_directory(options_.dir); !r) errors_.last_error = r.error().message;
  }
}

void SegmentRoller::close_finished() {
  for (auto it = open_.begin(); it != open_.end();) {
    OpenSegment& s = **it;
    if (&s == current_ || !s.retired || s.writes_outstanding > 0 || s.syncs_in_flight > 0) {
      ++it;
      continue;
    }
    if (options_.direct && !s.padding_cut &&
        (s.end_offset % kPageSize != 0 || s.preallocated_end > s.end_offset)) {
      if (::ftruncate(s.fd, static_cast<off_t>(s.end_offset)) != 0) {
        errors_.report_once(
            os_error(errno, fmt::format("cannot cut the padding of segment {}", s.path)));
      }
    }
    s.padding_cut = true;
    if (options_.fsync != FsyncPolicy::never && s.written_since_sync) {
      ++it;  // the next fdatasync round covers it
      continue;
    }
    it = open_.erase(it);
  }
}

void SegmentRoller::cut_current_padding() {
  if (options_.direct && current_ != nullptr &&
      (current_->end_offset % kPageSize != 0 || current_->preallocated_end > current_->end_offset)) {
    (void)::ftruncate(current_->fd, static_cast<off_t>(current_->end_offset));
  }
}

}  // namespace shmbus::journal
