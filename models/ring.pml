/*
 * A model of the ring protocol (core/ring.hpp, core/ring_reader.hpp, core/ring_repair.cpp,
 * ipc/gate.cpp), checked with spin: claim by compare-and-swap of the tail, payload written in
 * place, header and commit word stored last, a gating (block) reader that publishes its position
 * lazily, a copying (drop) reader that validates its copy by the claim position afterwards, the
 * repair of a claim whose producer died or stalled past the abandon timeout, producers that bound
 * each other by their in-flight claims, and the eviction of a dead gating reader.
 *
 * What is abstracted: every record has the same frame size, so positions count frames and the
 * record at position p carries sequence p + 1 (the tail word moves both together, so this is the
 * real relation without padding); the ring holds N frames; the commit word is (position, state)
 * exactly as (position ^ key) | state identifies a position and a state; time is not modelled: an
 * abandon timeout may expire at any moment, so the repair may run at any point of a stalled
 * producer. Every statement is one atomic step of the real code (an aligned load or store, a CAS)
 * unless it is grouped in an atomic block, each of which says which real step it stands for.
 *
 * Properties (assertions, checked in every interleaving, plus spin's check for invalid end
 * states, which is a deadlock):
 *   - no torn read is delivered: a delivered payload is all of one record;
 *   - sequences are contiguous: each reader sees exactly the sequence it expects next, or a gap
 *     it counts;
 *   - a gating reader loses no committed record: every record whose commit returned ok is
 *     delivered to it, and a record whose commit returned abandoned is never delivered (so a
 *     producer that publishes it again makes no duplicate);
 *   - nothing deadlocks: with producers and readers killed at any step, everyone alive finishes.
 *
 * The one timing assumption is the commit step (CommitStep below): a producer that is alive
 * completes the few stores between its look at repaired_through and its commit store within the
 * abandon timeout. Built with -DWITHOUT_COMMIT_ASSUMPTION the commit is three steps, and spin
 * finds the interleaving in which a repair lands inside that window (models/check.sh expects it
 * to): see "Known gaps" in docs/architecture.md. Built with -DWITHOUT_LAP_CHECK the drop
 * reader trusts its copy without comparing the claim position, and with -DWITHOUT_IN_FLIGHT_BOUND
 * a producer may claim a lap past another's open claim; spin finds a torn delivery in both: the
 * checks above are not vacuous.
 */

#ifndef N
#define N 2            /* frames in the ring */
#endif
#ifndef MSGS
#define MSGS 2         /* messages each producer publishes */
#endif
#define NPROD 2
#define TOTAL (NPROD * MSGS)
#define NONE 255

/* commit words: NEVER for a frame never written; else position * 4 + state */
#define NEVER 255
#define COMMITTED(p) ((p) * 4)
#define REPAIRING(p) ((p) * 4 + 2)
#define SLOT(p) ((p) % N)

#define DATA 0
#define ABANDONED 1

/* --- the ring (shared memory) --- */
byte tail = 0;                 /* TailWord: next free position (the sequence is tail + 1) */
byte commitw[N];               /* RecordHeader::commit */
byte hseq[N];                  /* RecordHeader::sequence */
bit htype[N];                  /* RecordHeader::type: data or abandoned */
byte pay_head[N];              /* payload, written in two stores: a torn copy has them differ */
byte pay_tail[N];
byte repaired_through = 0;     /* RingHeader::repaired_through, in positions */

/* --- the control segment --- */
byte gate = 0;                 /* the block reader's published position */
bit reader_alive = 1;          /* the block reader's process exists */
bit reader_evicted = 0;        /* its slot was evicted: it gates no more */
byte in_flight[NPROD];         /* ProducerSlot::in_flight: start of an open claim, or NONE */
bit producer_dead[NPROD];

/* --- ghost state: what each party was told, for the assertions --- */
bit commit_ok[TOTAL + 1];        /* the producer's commit of this sequence returned ok */
bit commit_abandoned[TOTAL + 1]; /* ... returned abandoned */
bit delivered[TOTAL + 1];        /* the block reader delivered it as data */
byte finished = 0;               /* producers done or dead */
bit block_done = 0;

/* The floor a producer may claim below + N: the gating reader (unless evicted) and every other
 * producer's open claim (a live producer's bound, or a dead one's not yet cleared). */
#ifndef WITHOUT_IN_FLIGHT_BOUND
#define FREE_FOR(me) \
  ((reader_evicted || tail < gate + N) && \
   (in_flight[1 - (me)] == NONE || tail < in_flight[1 - (me)] + N))
#else
#define FREE_FOR(me) (reader_evicted || tail < gate + N)
#endif

/* One kill -9 per run, of any process at any step: enough for every crash case in
 * docs/architecture.md's table, and it keeps the state space small enough to search whole. */
bit killed = 0;

inline maybe_die(me) {
  if
  :: skip
  :: atomic { !killed -> killed = 1; producer_dead[me] = 1; finished++ }; goto dead
  fi
}

proctype Producer(byte me) {
  byte sent = 0;
  byte pos;
  do
  :: sent == MSGS -> break
  :: /* Announce the in-flight bound, then claim (the locked CAS of the tail) under the gate.
      * The two are one step here: the bound is stored before the CAS and the other producers'
      * floor reads it before theirs (ipc/gate.cpp), which this step stands for. A producer that
      * finds no room retries: it blocks here until the floor moves. */
     atomic {
       sent < MSGS && FREE_FOR(me) -> pos = tail; tail++; in_flight[me] = pos
     }
     maybe_die(me);
     pay_head[SLOT(pos)] = pos + 1;
     maybe_die(me);
     pay_tail[SLOT(pos)] = pos + 1;
     maybe_die(me);
#ifdef WITHOUT_COMMIT_ASSUMPTION
     /* RingWriter::commit_record as separate steps: the look, the header, the commit store. */
     if
     :: repaired_through > pos -> commit_abandoned[pos + 1] = 1
     :: else ->
        hseq[SLOT(pos)] = pos + 1; htype[SLOT(pos)] = DATA;
        commitw[SLOT(pos)] = COMMITTED(pos);
        commit_ok[pos + 1] = 1
     fi;
#else
     /* CommitStep: RingWriter::commit_record under the timing assumption (see the top). */
     atomic {
       if
       :: repaired_through > pos -> commit_abandoned[pos + 1] = 1
       :: else ->
          hseq[SLOT(pos)] = pos + 1; htype[SLOT(pos)] = DATA;
          commitw[SLOT(pos)] = COMMITTED(pos);
          commit_ok[pos + 1] = 1
       fi
     }
#endif
     in_flight[me] = NONE;   /* cleared after the last commit of the claim */
     sent++
  :: /* Finding the gating reader dead and its liveness timeout passed: evict it. */
     !reader_alive && !reader_evicted -> reader_evicted = 1
  :: /* Finding another producer dead: clear its in-flight bound (its claim stays a hole). */
     producer_dead[1 - me] && in_flight[1 - me] != NONE -> in_flight[1 - me] = NONE
  od;
  finished++;
dead:
  skip
}

/* repair_stall + repair_record for a one-record hole at `pos` (its extent and sequence are what
 * analyze_stall infers; with equal frames they are exact). */
inline repair(pos) {
  /* Raise repaired_through first (CAS of a monotonic maximum). */
  atomic { if :: repaired_through < pos + 1 -> repaired_through = pos + 1 :: else -> skip fi }
  seen = commitw[SLOT(pos)];
  if
  :: seen == COMMITTED(pos) -> skip        /* the producer committed first: leave it */
  :: else ->
     atomic {                                /* CAS seen -> repairing */
       if
       :: commitw[SLOT(pos)] == seen -> commitw[SLOT(pos)] = REPAIRING(pos); won = 1
       :: else -> won = 0
       fi
     }
     if
     :: won ->
        htype[SLOT(pos)] = ABANDONED;
        hseq[SLOT(pos)] = pos + 1;
        commitw[SLOT(pos)] = COMMITTED(pos)
     :: else -> skip
     fi
  fi
}

/* A block subscriber: poll_inplace, the lazy position store, and the repair of stalled claims. */
proctype BlockReader() {
  byte pos = 0;
  byte seen;
  bit won;
  byte k;
  do
  :: commitw[SLOT(pos)] == COMMITTED(pos) ->
     assert(hseq[SLOT(pos)] == pos + 1);                   /* contiguous sequences */
     if
     :: htype[SLOT(pos)] == DATA ->
        assert(pay_head[SLOT(pos)] == pos + 1 && pay_tail[SLOT(pos)] == pos + 1);  /* not torn */
        delivered[pos + 1] = 1
     :: else -> skip                                         /* abandoned: counted lost */
     fi;
     pos++
  :: gate != pos -> gate = pos   /* the lazy position store: at any later moment (a sixteenth of
                                  * the ring read, an empty poll, a sleep) */
  :: commitw[SLOT(pos)] != COMMITTED(pos) && tail > pos ->
     /* The abandon timeout passed while waiting at a claimed position. */
     repair(pos)
  :: pos == tail && finished == NPROD -> break
  :: atomic { !killed -> killed = 1; reader_alive = 0 }; goto gone   /* kill -9 */
  od;
  /* Every record a producer was told was committed reached this reader; none it was told was
   * abandoned did. */
  k = 1;
  do
  :: k <= TOTAL ->
     assert(!commit_ok[k] || delivered[k]);
     assert(!commit_abandoned[k] || !delivered[k]);
     k++
  :: else -> break
  od;
  block_done = 1;
gone:
  skip
}

/* A drop subscriber: poll_copy (copy, then compare the claim position), resynchronising when
 * lapped and skipping a stalled claim locally (it maps the ring read-only). */
proctype DropReader() {
  byte pos = 0;
  byte seq, head, tail_half;
  bit type;
  do
  :: commitw[SLOT(pos)] == COMMITTED(pos) ->
     seq = hseq[SLOT(pos)];
     type = htype[SLOT(pos)];
     head = pay_head[SLOT(pos)];
     tail_half = pay_tail[SLOT(pos)];
     if
#ifndef WITHOUT_LAP_CHECK
     :: tail > pos + N -> pos = tail            /* lapped: discard the copy, count the gap */
#endif
     :: else ->
        assert(seq == pos + 1);
        assert(type == ABANDONED || (head == seq && tail_half == seq));
        pos++
     fi
  :: commitw[SLOT(pos)] != COMMITTED(pos) && tail > pos ->
     pos++                                     /* the abandon timeout: skip, counted lost */
  :: pos >= tail && finished == NPROD -> break
  od
}

init {
  byte i;
  atomic {
    i = 0;
    do
    :: i < N -> commitw[i] = NEVER; i++
    :: else -> break
    od;
    in_flight[0] = NONE;
    in_flight[1] = NONE;
    run Producer(0);
    run Producer(1);
    run BlockReader();
    run DropReader()
  }
}
