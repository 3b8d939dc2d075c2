import { usageError } from '../errors.ts';
import { parseDestination } from '../options.ts';
import { didYouMean } from '../suggest.ts';

/** A flag given with an empty value is a mistake (an unset variable in a script), never "the default". */
export function refuseEmpty(flags: readonly (readonly [string, string | undefined])[]): void {
  for (const [name, value] of flags) {
    if (value !== undefined && value.trim() === '') throw usageError(`option ${name} is empty`);
  }
}

export function integer(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min || v > max) {
    // No upper bound worth naming: say what is wanted, not 9007199254740991.
    const range =
      max === Number.MAX_SAFE_INTEGER ? `a whole number ≥ ${min}` : `an integer ${min}..${max}`;
    throw usageError(`option --${name} must be ${range}, got ${String(value)}`);
  }
  return v;
}

/** An optional whole number ≥ `min`; unset is `Infinity` (no bound). */
export function unbounded(name: string, value: number | undefined, min: number): number {
  return value === undefined
    ? Number.POSITIVE_INFINITY
    : integer(name, value, 0, min, Number.MAX_SAFE_INTEGER);
}

export function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || Number.isNaN(v) || v < 0) {
    throw usageError(`option --${name} must be a number >= 0, got ${String(value)}`);
  }
  return v;
}

export function aboveZero(name: string, value: number): number {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw usageError(`option --${name} must be a number > 0, got ${String(value)}`);
  }
  return value;
}

export function baseUrl(name: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usageError(`option --${name} must be an http(s) URL, got ${value}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usageError(`option --${name} must be an http(s) URL, got ${value}`);
  }
  return url.href.replace(/\/+$/, '');
}

/** A choice option's value, checked against its choices (with a "did you mean"). */
export function choice<T extends string>(
  flag: string,
  value: string | undefined,
  choices: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw usageError(
    `option ${flag} must be ${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}, got ${value === '' ? 'nothing' : value}${didYouMean(value, choices)}`,
  );
}

const PLACEHOLDERS = ['date', 'run_id', 'market'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];

/** The flags that name a place the run writes. */
export type LocationFlag = '--out' | '--rejects' | '--raw' | '--report' | '--state';

/**
 * The one rule for templates: which placeholders each location may use, and why the others do
 * not apply. `{market}` names one object per market, so only `--out` takes it; the state is one
 * file kept across runs, so it takes none. The plan lists these per output.
 */
export const LOCATION_PLACEHOLDERS: Record<
  LocationFlag,
  { allowed: readonly Placeholder[]; one: string }
> = {
  '--out': { allowed: PLACEHOLDERS, one: '' },
  '--rejects': { allowed: ['date', 'run_id'], one: 'one rejects file per run' },
  '--raw': { allowed: ['date', 'run_id'], one: 'one raw landing per run' },
  '--report': { allowed: ['date', 'run_id'], one: 'one report per run' },
  '--state': { allowed: [], one: 'the state is one file kept across runs' },
};

/**
 * `{bogus}` in a location would be written literally, and a known placeholder where it cannot
 * apply would expand to something surprising (`raw/{market}.ndjson` → `raw/.ndjson`): both are
 * refused, naming what the location may use.
 */
export function checkPlaceholders(flag: LocationFlag, location: string): void {
  const { allowed, one } = LOCATION_PLACEHOLDERS[flag];
  for (const [, name = ''] of location.matchAll(/\{([^}]*)\}/g)) {
    if (!(PLACEHOLDERS as readonly string[]).includes(name)) {
      throw usageError(
        `option ${flag}: unknown placeholder {${name}}${didYouMean(name, PLACEHOLDERS)}; the known ones are {date}, {run_id} and {market}`,
      );
    }
    if (!(allowed as readonly string[]).includes(name)) {
      const may =
        allowed.length === 0 ? '' : ` (it may use ${allowed.map((a) => `{${a}}`).join(' and ')})`;
      throw usageError(`option ${flag}: {${name}} does not apply: ${one}${may}`);
    }
  }
}

/**
 * A place beside the data (`--rejects`, `--raw`, `--report`, `--state`): not empty (`hint` says
 * what to give), its placeholders allowed, and a file or an S3 key, never stdout.
 */
export function sideLocation(
  flag: Exclude<LocationFlag, '--out'>,
  location: string | undefined,
  hint: string,
): string | undefined {
  if (location === undefined) return undefined;
  if (location.trim() === '') throw usageError(`option ${flag} is empty: give ${hint}`);
  checkPlaceholders(flag, location);
  if (parseDestination(location, flag).kind === 'stdout') {
    throw usageError(`option ${flag} needs a file path or s3:// key, got -`);
  }
  return location;
}
