import { randomBytes } from 'node:crypto';
import { dirname, posix, resolve } from 'node:path';
import { usageError } from '../core/errors.ts';
import type { NormalizedOptions } from '../core/options/normalize.ts';
import { expandOut, type OutVars, parseDestination } from '../core/options.ts';
import { contentType } from '../transforms/encode.ts';
import { STAR_TABLE_NAMES, type StarTable } from '../transforms/star.ts';

/**
 * The values of a run's templates: `{date}` (UTC) and `{run_id}`, from its start; `date`
 * (`--date`, a backfill) replaces the first only: the run id still says when it really ran.
 */
export function runVars(now: Date, date?: string): OutVars {
  return {
    date: date ?? now.toISOString().slice(0, 10),
    runId: `${now.toISOString().replace(/[-:]/g, '').slice(0, 15)}Z-${randomBytes(3).toString('hex')}`,
  };
}

/** One data output of a run. */
export interface PlannedOutput {
  location: string;
  /** The market of a per-market output. */
  market: string | undefined;
  /** The table of a star model. */
  table: StarTable | undefined;
}

/** What opening one place of the run takes (src/sinks/open.ts), and what a preflight probes. */
export interface Target {
  location: string;
  /** The option errors about this place name: `--out`, `--raw`, `--manifest`… */
  flag: string;
  contentType: string;
  /** Missing parent directories are made (templated partitions, a star's folder). */
  createDirs: boolean;
}

/** Every place a run writes, with the templates filled in. */
export interface Plan {
  outputs: PlannedOutput[];
  rejects: string | undefined;
  /** The raw landing: page bodies as received. */
  raw: string | undefined;
  manifest: string | undefined;
  /** The run's HTML report. */
  report: string | undefined;
  /** The incremental state (its lease sits beside it, at `<state>.lease`). */
  state: string | undefined;
  /** Every place above (the state's lease included) and how it is opened, outputs first. */
  targets: Target[];
}

/** The planned target at `location` (every location a run opens is in its plan). */
export function target(plan: Plan, location: string): Target {
  const found = plan.targets.find((t) => t.location === location);
  if (found === undefined) throw new Error(`not in the plan: ${location}`);
  return found;
}

/**
 * Where a run will write: its data outputs (one, one per market, or a star's three tables), the
 * rejects file and the manifest. Two of them at one place would silently overwrite each other,
 * so that is refused here, before anything is opened.
 */
export function planOutputs(
  o: Pick<NormalizedOptions, 'outputs' | 'markets' | 'report' | 'state'>,
  vars: OutVars,
): Plan {
  const { out, model, format, gzip } = o.outputs;
  const ext = `${format}${gzip ? '.gz' : ''}`;
  const markets = o.markets.perMarket ? o.markets.list : [undefined];
  const outputs = markets.flatMap((market): PlannedOutput[] => {
    const expanded = expandOut(out, { ...vars, market });
    return model === 'star'
      ? STAR_TABLE_NAMES.map((table) => ({ location: `${expanded}${table}.${ext}`, market, table }))
      : [{ location: expanded, market, table: undefined }];
  });
  const filled = (location: string | undefined) =>
    location === undefined ? undefined : expandOut(location, vars);
  const rejects = filled(o.outputs.rejects);
  const raw = filled(o.outputs.raw);
  const manifest = o.outputs.manifest ? manifestLocation(out, vars) : undefined;
  const report = filled(o.report.location);
  const state = filled(o.state.location);
  const seen = new Map<string, string>();
  const claim = (location: string | undefined, what: string) => {
    if (location === undefined || location === '-') return;
    // Compared as what they name: S3://b/k and s3://b/k are one object, a/../x.csv and x.csv one file.
    const d = parseDestination(location);
    const key =
      d.kind === 'file'
        ? resolve(d.path)
        : d.kind === 's3'
          ? `s3://${d.bucket}/${d.key}`
          : location;
    const other = seen.get(key);
    if (other !== undefined) {
      throw usageError(`${other} and ${what} name the same output: ${location}`);
    }
    seen.set(key, what);
  };
  for (const output of outputs) claim(output.location, 'option --out');
  claim(rejects, 'option --rejects');
  claim(raw, 'option --raw');
  claim(manifest, 'the manifest (_manifest.json beside the data)');
  claim(report, 'option --report');
  claim(state, 'option --state');
  claim(state && `${state}.lease`, "the state's lease");
  // Partitions (dt=…/market=…) and a star's folder may not exist yet.
  const dataDirs = model === 'star' || /\{(date|run_id|market)\}/.test(out);
  const targets: Target[] = [
    ...outputs.map((p) => ({
      location: p.location,
      flag: '--out',
      contentType: contentType(o.outputs),
      createDirs: dataDirs,
    })),
    ...place(rejects, '--rejects', 'application/x-ndjson', false),
    ...place(raw, '--raw', rawContentType(raw ?? ''), true),
    ...place(report, '--report', 'text/html; charset=utf-8', true),
    ...place(state, '--state', 'text/plain; charset=utf-8', false),
    ...place(state && `${state}.lease`, '--state', 'application/json', false),
    ...place(manifest, '--manifest', 'application/json', true),
  ];
  // A folder one output makes is made for every output in it: the run opens them in its own
  // order (rejects, raw, report, data, the manifest last), so each must be free to make it. The
  // state and its lease are written in place (a create-only write): their folder must exist.
  const made = new Set(targets.filter((t) => t.createDirs).map((t) => dirname(t.location)));
  for (const t of targets) if (t.flag !== '--state') t.createDirs ||= made.has(dirname(t.location));
  return { outputs, rejects, raw, manifest, report, state, targets };
}

/**
 * `_manifest.json` beside the data: in the directory (or key prefix) that holds every output —
 * for `s3://b/dt={date}/market={market}/albums.csv`, in `s3://b/dt=…/`.
 */
function manifestLocation(out: string, vars: OutVars): string {
  const marker = '\u0000';
  const expanded = expandOut(out, { ...vars, market: marker });
  const fixed = expanded.includes(marker) ? expanded.slice(0, expanded.indexOf(marker)) : expanded;
  const dir = fixed.slice(0, fixed.lastIndexOf('/') + 1);
  if (/^s3:\/\//i.test(fixed)) return `${dir}_manifest.json`;
  return posix.join(dir === '' ? '.' : dir, '_manifest.json');
}

/** The raw landing is gzipped unless its name says plain NDJSON. */
export function rawIsPlain(location: string): boolean {
  return /\.(ndjson|jsonl)$/i.test(location);
}

function rawContentType(location: string): string {
  return rawIsPlain(location) ? 'application/x-ndjson' : 'application/gzip';
}

function place(
  location: string | undefined,
  flag: string,
  type: string,
  createDirs: boolean,
): Target[] {
  return location === undefined ? [] : [{ location, flag, contentType: type, createDirs }];
}
