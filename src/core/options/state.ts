import { usageError } from '../errors.ts';
import { DEFAULTS, type Options } from '../options.ts';
import { integer, sideLocation } from './checks.ts';

/** The incremental state and the run's date (the first-seen date the state records). */
export interface StateConfig {
  /** The state's file or S3 key; undefined: no state. */
  location: string | undefined;
  /** Write only albums the state does not know. */
  newOnly: boolean;
  /** Ids first seen more than this many days ago are dropped from the state. */
  ttlDays: number;
  /** `--date` as given (checked); undefined: the run's start, UTC. */
  date: string | undefined;
}

export function normalizeState(
  options: Pick<Options, 'state' | 'newOnly' | 'stateTtlDays' | 'date'>,
): StateConfig {
  const location = sideLocation('--state', options.state, 'a file path or s3:// key');
  if (options.newOnly && location === undefined) {
    throw usageError(
      'option --new-only needs --state LOCATION (where the albums already written are kept)',
    );
  }
  if (options.stateTtlDays !== undefined && location === undefined) {
    throw usageError('option --state-ttl needs --state LOCATION');
  }
  return {
    location,
    newOnly: options.newOnly ?? false,
    ttlDays: integer('state-ttl', options.stateTtlDays, DEFAULTS.stateTtlDays, 1, 36_500),
    date: runDate(options.date),
  };
}

/**
 * `--date`: a real calendar day (2026-02-30 is refused, not rolled over to March), not after
 * `now`'s UTC day — a backfill names a day that happened.
 */
export function runDate(value: string | undefined, now = new Date()): string | undefined {
  if (value === undefined) return undefined;
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value.trim());
  const day = match && new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])));
  if (!match || !day || day.toISOString().slice(0, 10) !== match[0]) {
    throw usageError(
      `option --date must be a calendar day YYYY-MM-DD, got ${value === '' ? 'nothing' : JSON.stringify(value)}`,
    );
  }
  const today = now.toISOString().slice(0, 10);
  if (match[0] > today) {
    throw usageError(`option --date ${match[0]} is in the future (today is ${today}, UTC)`);
  }
  return match[0];
}
