import { basename, posix } from 'node:path';
import type { EventListener } from '../core/stats.ts';
import type { Destinations } from '../sinks/open.ts';
import type { Plan } from './plan.ts';

/**
 * One data output a previous run of this folder published, as its `_manifest.json` lists it.
 * `entry` is the manifest's object as it was written (a carried output is listed with it
 * unchanged, but for `runId` and `raw`, which older manifests kept only at their top level).
 */
export interface PreviousObject {
  location: string;
  /** The run that wrote it. */
  runId: string;
  /** The raw landing that holds its pages, when the run kept one. */
  raw: string | null;
  entry: Record<string, unknown>;
  /** Its version when this run read the manifest (one no longer there is not listed). */
  version: string;
  /** A raw landing of its pages is still there: removing the output loses nothing. */
  rawThere: boolean;
}

/** The previous run of the folder, known only through its manifest (read before the pull). */
export interface PreviousRun {
  /** The manifest's version when it was read (null: there was none). */
  manifestVersion: string | null;
  objects: PreviousObject[];
}

/** What a re-run does with each output the old manifest lists, once it knows what it published. */
export interface FolderChanges {
  /** Listed again, unchanged, with the run that wrote them. */
  carried: PreviousObject[];
  /** Deleted in phase two: no output of this run any more, and their raw pages kept. */
  removed: PreviousObject[];
}

/**
 * Reads the folder's manifest at the start of the run. Only objects inside the manifest's own
 * folder count (a run deletes nothing it cannot prove a previous run of this folder wrote); a
 * manifest that cannot be read as one proves nothing, so it is treated as none.
 */
export async function readPrevious(
  destinations: Destinations,
  location: string,
): Promise<PreviousRun> {
  const found = await destinations.read(location);
  if (found === undefined) return { manifestVersion: null, objects: [] };
  let parsed: unknown;
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of found.body) chunks.push(Buffer.from(chunk));
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return { manifestVersion: found.version, objects: [] };
  }
  const m = (parsed ?? {}) as { runId?: unknown; raw?: unknown; objects?: unknown };
  const folder = location.slice(0, location.length - basename(location).length);
  const objects: PreviousObject[] = [];
  for (const entry of Array.isArray(m.objects) ? (m.objects as Record<string, unknown>[]) : []) {
    const at = entry?.location;
    if (typeof at !== 'string' || !inside(at, folder)) continue;
    const runId = typeof entry.runId === 'string' ? entry.runId : m.runId;
    if (typeof runId !== 'string') continue;
    const raw = rawOf(entry.raw) ?? rawOf(m.raw);
    const version = await destinations.version(at);
    if (version === null) continue; // nothing left to carry or remove
    const rawThere = raw !== null && (await destinations.version(raw)) !== null;
    objects.push({ location: at, runId, raw, entry, version, rawThere });
  }
  return { manifestVersion: found.version, objects };
}

/**
 * Decides the fate of the previous run's outputs: one this run rewrote is replaced (not listed
 * here); one it planned but did not publish (a market skipped under `--on-market-error skip`)
 * keeps its old file, carried; one it no longer writes (a market not asked for any more) is
 * removed when its raw pages are kept, and carried otherwise — nothing published is lost
 * without a copy. With no previous run (no manifest written, or a reader that left early and
 * ends the run with nothing published) there is nothing to decide.
 */
export function folderChanges(
  previous: PreviousRun | undefined,
  plan: Plan,
  published: string[],
): FolderChanges {
  if (previous === undefined) return { carried: [], removed: [] };
  const planned = new Set(plan.outputs.map((o) => o.location));
  const rewritten = new Set(published);
  const carried: PreviousObject[] = [];
  const removed: PreviousObject[] = [];
  for (const object of previous.objects) {
    if (rewritten.has(object.location)) continue;
    if (planned.has(object.location) || !object.rawThere) carried.push(object);
    else removed.push(object);
  }
  return { carried, removed };
}

/** One event per output of the previous run that this run carried over or removed. */
export function tellChanges(
  { carried, removed }: FolderChanges,
  plan: Plan,
  onEvent: EventListener | undefined,
): void {
  const planned = new Set(plan.outputs.map((p) => p.location));
  for (const { location, runId, raw } of removed) {
    onEvent?.({
      event: 'previous-output',
      action: 'removed',
      location,
      runId,
      raw,
      reason: 'not-written',
    });
  }
  for (const { location, runId, raw } of carried) {
    const reason = planned.has(location) ? 'not-replaced' : 'no-raw-copy';
    onEvent?.({ event: 'previous-output', action: 'kept', location, runId, raw, reason });
  }
}

/**
 * Where a raw landing goes: `location` itself when nothing is there, otherwise beside it with the
 * run id before the extensions (`pages.ndjson.gz` → `pages.<run_id>.ndjson.gz`). Raw landings
 * are never replaced.
 */
export function besideName(location: string, runId: string): string {
  const name = basename(location);
  const dot = name.indexOf('.', 1);
  const renamed =
    dot === -1 ? `${name}.${runId}` : `${name.slice(0, dot)}.${runId}${name.slice(dot)}`;
  return location.slice(0, location.length - name.length) + renamed;
}

function rawOf(value: unknown): string | null {
  if (typeof value === 'string') return value;
  // A manifest that lists several raw files per output: the first one.
  if (Array.isArray(value) && typeof value[0] === 'string') return value[0];
  if (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { location?: unknown }).location === 'string'
  ) {
    return (value as { location: string }).location;
  }
  return null;
}

/** `location` lies in the folder `folder` (which ends in `/`) or below it, without `..`. */
function inside(location: string, folder: string): boolean {
  if (/^s3:\/\//i.test(folder)) return location.startsWith(folder) && !location.includes('/../');
  // A file's location names the same file however it is written (`./out/x` and `out/x`).
  const dir = posix.normalize(folder);
  if (dir === '.' || dir === './')
    return !location.startsWith('/') && !posix.normalize(location).startsWith('../');
  return posix.normalize(location).startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}
