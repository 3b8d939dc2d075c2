import { Transform, type TransformCallback } from 'node:stream';
import type { SourceItem } from '../core/records.ts';

/** What the incremental state knows of each album id: `first_seen<TAB>market`. */
export type StateEntries = Map<string, string>;

/** Counts of one run against the state (distinct albums). */
export interface StateCounts {
  /** Albums not in the state: first emitted by this run. */
  new: number;
  /** Albums the state already had (dropped from the output with --new-only). */
  seen: number;
}

/**
 * One album against the state: `known` is what the state had before the run, `added` what this
 * run has emitted so far (shared by all of the run's markets). Answers the album's first-seen
 * date and whether it is new to the state; records a new one in `added`. Items without an id pass
 * as new (the rows stage rejects them).
 */
export function track(
  item: SourceItem,
  known: StateEntries,
  added: StateEntries,
  today: string,
  counts: StateCounts,
  /** Ids this call adds to `added` (with whether they were new), so a failed market can undo them. */
  claimed?: [string, boolean][],
): { firstSeen: string; isNew: boolean } {
  const id = (item.album as { id?: unknown } | null)?.id;
  if (typeof id !== 'string') return { firstSeen: today, isNew: true };
  const before = known.get(id);
  if (before !== undefined) {
    if (!added.has(id)) {
      // Counted once per run, however many markets list it: `added` marks it as counted.
      added.set(id, before);
      counts.seen++;
      claimed?.push([id, false]);
    }
    return { firstSeen: before.slice(0, 10), isNew: false };
  }
  if (added.has(id)) return { firstSeen: today, isNew: false };
  added.set(id, `${today}\t${item.market ?? ''}`);
  counts.new++;
  claimed?.push([id, true]);
  return { firstSeen: today, isNew: true };
}

export interface StateTrackerOptions {
  known: StateEntries;
  added: StateEntries;
  today: string;
  counts: StateCounts;
  /** Drop albums that are not new (in the state, or already written by this run). */
  newOnly: boolean;
  /** Filled with the ids this tracker added (see {@link track}). */
  claimed?: [string, boolean][];
}

/**
 * Takes back what a market's tracker added to the run's state (the market failed and was
 * skipped: its albums were not published, so the state must not say they were written).
 */
export function unclaim(claimed: [string, boolean][], added: StateEntries, counts: StateCounts) {
  for (const [id, isNew] of claimed) {
    added.delete(id);
    if (isNew) counts.new--;
    else counts.seen--;
  }
  claimed.length = 0;
}

/** albums → albums with `firstSeenAt`; with `newOnly`, only those new to the state. */
export class StateTracker extends Transform {
  readonly #o: StateTrackerOptions;

  constructor(options: StateTrackerOptions) {
    super({ objectMode: true, highWaterMark: 16 });
    this.#o = options;
  }

  override _transform(
    item: SourceItem,
    _encoding: BufferEncoding,
    callback: TransformCallback,
  ): void {
    const { known, added, today, counts, newOnly, claimed } = this.#o;
    const { firstSeen, isNew } = track(item, known, added, today, counts, claimed);
    if (newOnly && !isNew) {
      callback();
      return;
    }
    item.firstSeenAt = firstSeen;
    callback(null, item);
  }
}
