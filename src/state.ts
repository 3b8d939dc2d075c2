import { hostname } from 'node:os';
import { createInterface } from 'node:readline';
import { SpotifyBatchError } from './core/errors.ts';
import type { Destinations } from './sinks/open.ts';
import type { StateEntries } from './transforms/state.ts';

/**
 * The incremental state on disk or S3: a header line, then one line per album id —
 * `album_id<TAB>first_seen (UTC date)<TAB>market` — about 37 bytes per id. Plain text, so
 * `grep`, `wc -l` and DuckDB's read_csv can look at it.
 */
export const STATE_HEADER = '# spotify-batch state v1: album_id\tfirst_seen\tmarket';

/** A lease older than this is abandoned (its run died without releasing it) and may be taken. */
export const LEASE_EXPIRY_HOURS = 6;

const LINE = /^([0-9A-Za-z]{1,64})\t(\d{4}-\d{2}-\d{2})\t([A-Z]{2})?$/;

export interface LoadedState {
  location: string;
  /** The version read (S3 ETag, a file's size and mtime); null when there was no state yet. */
  version: string | null;
  entries: StateEntries;
}

function corrupt(location: string, line: number, why: string): SpotifyBatchError {
  return new SpotifyBatchError(
    'ERR_CONFIG',
    `option --state: ${location} is not a usable spotify-batch state (line ${line}: ${why}); nothing was written`,
    { context: { path: location } },
  );
}

/**
 * Reads the state line by line (never the whole text at once). Equal (date, market) values are
 * shared, so an id costs its key and a map slot. A missing state is an empty one (the first run);
 * a foreign or corrupt one fails the run before anything is fetched.
 */
export async function loadState(
  destinations: Destinations,
  location: string,
): Promise<LoadedState> {
  const found = await destinations.read(location);
  const entries: StateEntries = new Map();
  if (found === undefined) return { location, version: null, entries };
  const values = new Map<string, string>();
  let n = 0;
  for await (const line of createInterface({ input: found.body, crlfDelay: Infinity })) {
    n++;
    if (n === 1) {
      if (line !== STATE_HEADER) {
        throw corrupt(
          location,
          1,
          `expected the header "${STATE_HEADER.split(':')[0]}", got ${JSON.stringify(line.slice(0, 40))}`,
        );
      }
      continue;
    }
    if (line === '') continue;
    const match = LINE.exec(line);
    if (!match)
      throw corrupt(
        location,
        n,
        `expected album_id<TAB>YYYY-MM-DD<TAB>market, got ${JSON.stringify(line.slice(0, 60))}`,
      );
    const value = `${match[2]}\t${match[3] ?? ''}`;
    let shared = values.get(value);
    if (shared === undefined) {
      shared = value;
      values.set(value, value);
    }
    entries.set(match[1] as string, shared);
  }
  if (n === 0) throw corrupt(location, 1, 'the file is empty');
  return { location, version: found.version, entries };
}

/** The state to write: what was kept (first seen within `ttlDays` of `today`) and what is new. */
export function* stateLines(
  known: StateEntries,
  added: StateEntries,
  today: string,
  ttlDays: number,
  counts: { dropped: number; kept: number },
): Generator<string> {
  const cutoff = new Date(Date.parse(`${today}T00:00:00Z`) - ttlDays * 86_400_000)
    .toISOString()
    .slice(0, 10);
  yield `${STATE_HEADER}\n`;
  let batch = '';
  const emit = function* (id: string, value: string) {
    batch += `${id}\t${value}\n`;
    // A few hundred lines per chunk: large enough writes, small enough memory.
    if (batch.length >= 16_384) {
      yield batch;
      batch = '';
    }
  };
  for (const [id, value] of known) {
    if (added.has(id)) continue; // written below, once
    if (value.slice(0, 10) < cutoff) {
      counts.dropped++;
      continue;
    }
    counts.kept++;
    yield* emit(id, value);
  }
  for (const [id, value] of added) {
    if (value.slice(0, 10) < cutoff) {
      counts.dropped++;
      continue;
    }
    counts.kept++;
    yield* emit(id, value);
  }
  if (batch !== '') yield batch;
}

interface LeaseBody {
  runId: string;
  startedAt: string;
  host: string;
  pid: number;
}

/**
 * One writer at a time: a lease beside the state (`<state>.lease`), taken with a create-only
 * write (S3 If-None-Match: *, a file's exclusive create) and released when the run ends. A lease
 * older than {@link LEASE_EXPIRY_HOURS} is taken over (conditionally, so two runs cannot both take
 * it). A held lease fails the run at once, naming the other run.
 */
export async function acquireLease(
  destinations: Destinations,
  stateLocation: string,
  runId: string,
  startedAt: Date,
): Promise<AsyncDisposable> {
  const location = `${stateLocation}.lease`;
  const body: LeaseBody = {
    runId,
    startedAt: startedAt.toISOString(),
    host: hostname(),
    pid: process.pid,
  };
  const text = `${JSON.stringify(body)}\n`;
  const take = (expect: string | null) =>
    destinations.writeIf(location, text, expect).catch((error: unknown) => {
      throw prefixed(error, stateLocation);
    });
  let taken = await take(null);
  if (taken === false) {
    const held = await destinations.read(location);
    let other: Partial<LeaseBody> = {};
    if (held !== undefined) {
      try {
        other = JSON.parse(await streamText(held.body)) as Partial<LeaseBody>;
      } catch {
        // Unreadable (a run killed while writing it): its age is the file's.
      }
      const since = Date.parse(other.startedAt ?? '') || held.modified?.getTime() || Number.NaN;
      const stale = startedAt.getTime() - since > LEASE_EXPIRY_HOURS * 3_600_000;
      if (stale) taken = await take(held.version);
    } else {
      taken = await take(null); // released between our two looks
    }
    if (taken === false) {
      throw new SpotifyBatchError(
        'ERR_LOCKED',
        `option --state: ${stateLocation} is in use by run ${other.runId ?? '(unknown)'}, started ${other.startedAt ?? '(unknown)'}${other.host ? ` on ${other.host} (pid ${other.pid})` : ''}; its lease ${location} expires ${LEASE_EXPIRY_HOURS} h after that start (if that run is gone, delete the lease)`,
        { context: { path: location } },
      );
    }
  }
  return {
    async [Symbol.asyncDispose]() {
      // Only our own lease: after an expiry another run may hold it now.
      const now = await destinations.read(location).catch(() => undefined);
      if (now === undefined) return;
      const holder = await streamText(now.body)
        .then((t) => (JSON.parse(t) as Partial<LeaseBody>).runId)
        .catch(() => undefined);
      if (holder === runId) await destinations.delete(location).catch(() => {});
    },
  };
}

function prefixed(error: unknown, stateLocation: string): unknown {
  if (error instanceof SpotifyBatchError && !error.message.startsWith('option --state')) {
    error.message = `option --state ${stateLocation}: ${error.message}`;
  }
  return error;
}

async function streamText(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text;
}
