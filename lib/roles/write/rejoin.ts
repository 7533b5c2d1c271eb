// A commit waits a moment for the connections the last one answered.
//
// A synchronous client sends its next frame as soon as it reads its WIN:
// some tens of µs later over loopback, well inside a commit (~100 µs on the
// 2-core machine's disk). Without waiting, two such clients fall into step:
// A's frame commits alone while B's waits, then B's alone while A's waits,
// so each waits for two commits and every commit carries one frame. Holding
// the next commit until the connections just answered have sent again (or a
// bound passes) puts their frames in one commit: one disk write for both,
// each client waiting for one commit. A lone client never waits (its frame
// is the one the commit is for), nor does a connection whose next frame is
// already in the batch (a pipelining client).
//
// The bound is half the recent commit time, at most MAX_WAIT_US (the
// writer's COUNTD_REJOIN_US, tuning.ts; 0: never wait): waiting is
// only worth it while it is shorter than the commit it saves. A wait that
// ends at the bound with some of them not back (clients that think between
// writes, or a machine too busy to run them in time) is a miss; after
// MISSES_BEFORE_BACKOFF in a row, commits start at once for the next
// BACKOFF_COMMITS commits, then waiting is tried again. Only a batch of
// few connections waits (GroupCommit: those it commits inline): a large
// batch gains little from a few more frames, and on two busy cores the
// turns of the event loop a wait takes would slow the clients it waits for.

/** What the rejoin wait needs of a connection. */
export interface RejoinMember {
  /** Answered by the last commit, and no frame of it taken since. */
  awaited: boolean;
}

/** Most a commit waits for the connections just answered, µs. */
export const MAX_WAIT_US = 200;
const MISSES_BEFORE_BACKOFF = 4;
const BACKOFF_COMMITS = 64;

export class Rejoin {
  /** Most a commit waits, µs (0: never). */
  private readonly maxWaitUs: number;
  /** Connections answered by the last commit that have not sent since (those of earlier commits are not waited for). */
  private awaited = 0;
  private readonly list: RejoinMember[] = [];
  /** performance.now() of the last WINs. */
  private answeredAt = 0;
  /** Recent commit time, µs (moving average). */
  private commitUs = 0;
  private misses = 0;
  private backoff = 0;
  /** Commits that waited, and how many of those the awaited connections all joined (for tests and tracing). */
  waited = 0;
  joinedAll = 0;

  constructor(maxWaitUs = MAX_WAIT_US) {
    this.maxWaitUs = maxWaitUs;
  }

  /** The WINs of a commit go out now: forget those answered before, then answered() each of its connections. */
  answering(now: number): void {
    for (const m of this.list) m.awaited = false;
    this.list.length = 0;
    this.awaited = 0;
    this.answeredAt = now;
  }

  /** `member` was answered by the commit just done; `queued`: a frame of it already waits in the next batch. */
  answered(member: RejoinMember, queued: boolean): void {
    if (queued || member.awaited) return;
    member.awaited = true;
    this.list.push(member);
    this.awaited++;
  }

  /** `member` added a frame to the batch (or is gone): it is waited for no more. */
  joined(member: RejoinMember): void {
    if (!member.awaited) return;
    member.awaited = false;
    this.awaited--;
  }

  /** A commit took `us`. */
  committed(us: number): void {
    this.commitUs = this.commitUs === 0 ? us : this.commitUs * 0.9 + us * 0.1;
  }

  /**
   * Whether the commit about to start should wait a little longer (the
   * caller tries again on the next turn of the event loop). `start`: the
   * commit starts now instead, and the wait's outcome is counted.
   */
  holds(now: number): boolean {
    if (this.awaited === 0 || this.backoff > 0 || this.commitUs === 0) return false;
    return (now - this.answeredAt) * 1000 < Math.min(this.commitUs / 2, this.maxWaitUs);
  }

  /** The commit starts: count whether the wait before it (if any) got every connection back. */
  starting(waitedBefore: boolean): void {
    if (this.backoff > 0) {
      this.backoff--;
      return;
    }
    if (!waitedBefore) return;
    this.waited++;
    if (this.awaited === 0) {
      this.joinedAll++;
      this.misses = 0;
    } else if (++this.misses >= MISSES_BEFORE_BACKOFF) {
      // Some did not come back within the bound, several commits in a row.
      this.misses = 0;
      this.backoff = BACKOFF_COMMITS;
    }
  }
}
