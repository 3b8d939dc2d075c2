import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { createInterface } from 'node:readline';
import { SpotifyBatchError } from '../core/errors.ts';
import { shellWord } from '../core/shell.ts';
import type { EventListener } from '../core/stats.ts';
import type { Destinations } from '../sinks/open.ts';
import type { StateEntries } from '../transforms/state.ts';

/**
 * The incremental state on disk or S3: a header line, then one line per album id —
 * `album_id<TAB>first_seen (UTC date)<TAB>market` — about 37 bytes per id. Plain text, so
 * `grep`, `wc -l` and DuckDB's read_csv can look at it.
 */
export const STATE_HEADER = '# spotify-batch state v1: album_id\tfirst_seen\tmarket';

/**
 * A lease older than this is abandoned (its run died without releasing it) and may be taken, even
 * when nothing here can tell whether its holder still runs (another host: a new pod, a new VM).
 */
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

/**
 * What a lease says about the run holding it. Any of it may be missing: a lease written by an
 * older version has no `pidns`, one cut short by a kill while it was written has nothing.
 */
export interface LeaseHolder {
  runId?: string;
  startedAt?: string;
  host?: string;
  pid?: number;
  /**
   * The holder's PID namespace (Linux: /proc/self/ns/pid). Two containers can share a host
   * name (host networking, a fixed --hostname) while their pids mean different processes: a
   * pid is only checked where it names the same process as for the holder.
   */
  pidns?: string;
}

/** A lease as found beside a state: its holder, its version (for a conditional change), its age. */
export interface FoundLease {
  location: string;
  holder: LeaseHolder;
  /** Whether the lease could be parsed at all. */
  readable: boolean;
  version: string;
  /** When it was taken (ms since the epoch): its startedAt, else the object's own time; NaN if neither. */
  since: number;
}

/**
 * Whether the holder of a lease may still be running:
 * - `gone`: the lease names this host, this PID namespace and a pid with no process (a run
 *   SIGKILLed or OOM-killed): it can be taken over at once;
 * - `expired`: older than {@link LEASE_EXPIRY_HOURS}: abandoned by the tool's rule;
 * - `running`: this host, and the pid is a running process (or a zombie, or another user's);
 * - `unverifiable`: another host or PID namespace, or a lease without a usable pid: nothing here
 *   can tell whether its run goes on.
 */
export type HolderStatus = 'gone' | 'expired' | 'running' | 'unverifiable';

/** Where this process stands, to judge a lease by. */
export interface Here {
  host: string;
  pidns: string | undefined;
  pid: number;
  /** Whether a process with this pid exists here. */
  alive(pid: number): boolean;
  /** Whether this process holds the lease of run `runId` (library users may run several runs). */
  holds(runId: string): boolean;
}

/** Run ids whose lease this process holds now. */
const heldHere = new Set<string>();

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: nothing is sent, only whether the pid exists is checked
    return true;
  } catch (error) {
    // EPERM: it exists, owned by another user.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined; // not Linux: the host name alone says where a pid means something
  }
}

/** This process, as {@link holderStatus} judges leases. */
export function here(): Here {
  return {
    host: hostname(),
    pidns: pidNamespace(),
    pid: process.pid,
    alive: pidAlive,
    holds: (runId) => heldHere.has(runId),
  };
}

/** See {@link HolderStatus}. `ageMs` is the lease's age; NaN when unknown (never expired). */
export function holderStatus(holder: LeaseHolder, ageMs: number, at: Here): HolderStatus {
  const { pid } = holder;
  const checkable =
    holder.host === at.host &&
    // A lease without a namespace (an older version's) is checkable only where there is none.
    holder.pidns === at.pidns &&
    typeof pid === 'number' &&
    Number.isInteger(pid) &&
    pid > 0; // 0 and negative pids name process groups
  if (checkable) {
    // Our own pid: this very process, or one before it with the same pid (a container started
    // again: a new PID namespace hands out the same pids). Only a lease we hold is ours.
    const running =
      pid === at.pid ? holder.runId !== undefined && at.holds(holder.runId) : at.alive(pid);
    if (!running) return 'gone';
  }
  if (ageMs > LEASE_EXPIRY_HOURS * 3_600_000) return 'expired';
  return checkable ? 'running' : 'unverifiable';
}

/** The lease beside `stateLocation`, if there is one. */
export async function readLease(
  destinations: Destinations,
  stateLocation: string,
): Promise<FoundLease | undefined> {
  const location = `${stateLocation}.lease`;
  const found = await destinations.read(location);
  if (found === undefined) return undefined;
  let holder: LeaseHolder = {};
  let readable = false;
  try {
    const parsed: unknown = JSON.parse(await streamText(found.body));
    if (parsed !== null && typeof parsed === 'object') {
      holder = parsed as LeaseHolder;
      readable = true;
    }
  } catch {
    // Unreadable (a run killed while writing it): its age is the object's.
  }
  const since = Date.parse(holder.startedAt ?? '') || found.modified?.getTime() || Number.NaN;
  return { location, holder, readable, version: found.version, since };
}

/** `run R, started T on H (pid P)`, with what is known. */
export function describeHolder(holder: LeaseHolder): string {
  return `run ${holder.runId ?? '(unknown)'}, started ${holder.startedAt ?? '(unknown)'}${holder.host ? ` on ${holder.host} (pid ${holder.pid})` : ''}`;
}

/** Why a holder of this status cannot be taken over from here, in a few words. */
export function whyHeld(status: HolderStatus, lease: FoundLease, at: Here): string {
  if (status === 'running') return 'which is still running';
  if (!lease.readable) return 'the lease is unreadable';
  if (lease.holder.host !== undefined && lease.holder.host !== at.host) {
    return `another host than this one (${at.host}), so whether it still runs cannot be checked here`;
  }
  if (lease.holder.host !== undefined && lease.holder.pidns !== at.pidns) {
    return 'another PID namespace (container) than this one, so whether it still runs cannot be checked here';
  }
  return 'whether it still runs cannot be checked';
}

function heldError(stateLocation: string, lease: FoundLease, status: HolderStatus, at: Here) {
  const unlock = `spotify-batch unlock --state ${shellWord(stateLocation)} --force`;
  const wayOut =
    status === 'running'
      ? `if that run is stuck, stop it (a run whose process is gone is taken over by the next one), or release the lease: ${unlock}`
      : `if that run is gone, release the lease: ${unlock}`;
  return new SpotifyBatchError(
    'ERR_LOCKED',
    `option --state: ${stateLocation} is in use by ${describeHolder(lease.holder)}, ${whyHeld(status, lease, at)}; its lease ${lease.location} expires ${LEASE_EXPIRY_HOURS} h after it was taken; ${wayOut}`,
    { context: { path: lease.location } },
  );
}

/**
 * Fails as {@link acquireLease} would on the lease found now, taking nothing: free, or held by a
 * run that is gone or expired (the run would take it over), passes. `check` and the pull's
 * preflight ask this before anything is fetched.
 */
export async function assertLeaseFree(
  destinations: Destinations,
  stateLocation: string,
  now: Date,
  at: Here = here(),
): Promise<void> {
  const lease = await readLease(destinations, stateLocation).catch((error: unknown) => {
    throw prefixed(error, stateLocation);
  });
  if (lease === undefined) return;
  const status = holderStatus(lease.holder, now.getTime() - lease.since, at);
  if (status === 'running' || status === 'unverifiable') {
    throw heldError(stateLocation, lease, status, at);
  }
}

/**
 * One writer at a time: a lease beside the state (`<state>.lease`), taken with a create-only
 * write (S3 If-None-Match: *, a file's exclusive create) and released when the run ends. A lease
 * whose holder is gone (this host, its pid no longer a process: killed by SIGKILL or the OOM
 * killer) or older than {@link LEASE_EXPIRY_HOURS} is taken over, with a write conditional on
 * the version read, so of two runs taking it over at once one wins; `onEvent` hears of it. Any
 * other lease fails the run at once, naming its holder and the command that releases it.
 */
export async function acquireLease(
  destinations: Destinations,
  stateLocation: string,
  runId: string,
  startedAt: Date,
  onEvent?: EventListener,
  at: Here = here(),
): Promise<AsyncDisposable> {
  const location = `${stateLocation}.lease`;
  const body: LeaseBody = {
    runId,
    startedAt: startedAt.toISOString(),
    host: at.host,
    pid: at.pid,
    ...(at.pidns === undefined ? {} : { pidns: at.pidns }),
  };
  const text = `${JSON.stringify(body)}\n`;
  const take = (expect: string | null) =>
    destinations.writeIf(location, text, expect).catch((error: unknown) => {
      throw prefixed(error, stateLocation);
    });
  // Ours from the first write on: a lease naming this pid that this process does not hold
  // would be taken for a dead predecessor's (see holderStatus), by a second run in this process.
  heldHere.add(runId);
  try {
    await takeLease();
  } catch (error) {
    heldHere.delete(runId);
    throw error;
  }
  async function takeLease(): Promise<void> {
    let taken = await take(null);
    /** The abandoned lease this run set out to replace, once it saw one. */
    let replacing: { lease: FoundLease; status: HolderStatus } | undefined;
    // Each failed conditional write means another run moved the lease meanwhile: look again, a
    // few times at most.
    for (let look = 0; taken === false && look < 4; look++) {
      const lease = await readLease(destinations, stateLocation);
      if (lease === undefined) {
        // Released between our two looks, or (files) moved aside by another run taking over
        // the abandoned lease we saw: creating it now takes that lease's place all the same.
        taken = await take(null);
        continue;
      }
      const status = holderStatus(lease.holder, startedAt.getTime() - lease.since, at);
      if (status === 'running' || status === 'unverifiable') {
        throw heldError(stateLocation, lease, status, at);
      }
      replacing = { lease, status };
      taken = await take(lease.version);
    }
    if (taken === false) {
      throw new SpotifyBatchError(
        'ERR_LOCKED',
        `option --state: the lease ${location} kept changing while this run tried to take it (other runs starting at once); nothing was written`,
        { context: { path: location } },
      );
    }
    if (replacing !== undefined) {
      const { holder } = replacing.lease;
      onEvent?.({
        event: 'lease-taken-over',
        location,
        reason: replacing.status === 'gone' ? 'holder-gone' : 'expired',
        runId: holder.runId ?? null,
        host: holder.host ?? null,
        pid: holder.pid ?? null,
        startedAt: holder.startedAt ?? null,
      });
    }
  }
  return {
    async [Symbol.asyncDispose]() {
      heldHere.delete(runId);
      // Only our own lease: after an expiry another run may hold it now.
      const now = await destinations.read(location).catch(() => undefined);
      if (now === undefined) return;
      const holder = await streamText(now.body)
        .then((t) => (JSON.parse(t) as Partial<LeaseBody>).runId)
        .catch(() => undefined);
      // Only the version read: a run that took the lease over since keeps it. A store that
      // refuses a conditional delete gets the plain one (the lease is ours by its run id).
      if (holder === runId) {
        await destinations
          .deleteIf(location, now.version)
          .catch(() => destinations.delete(location))
          .catch(() => {});
      }
    },
  };
}

interface LeaseBody {
  runId: string;
  startedAt: string;
  host: string;
  pid: number;
  pidns?: string;
}

/** An error about the state, prefixed with the option and the location (once). */
export function prefixed(error: unknown, stateLocation: string): unknown {
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
