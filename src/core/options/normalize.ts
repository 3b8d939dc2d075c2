import { usageError } from '../errors.ts';
import { DEFAULTS, type Options } from '../options.ts';
import { type MarketsConfig, normalizeMarkets } from './markets.ts';
import { checkOutSyntax, normalizeOutputs, type OutputsConfig } from './outputs.ts';
import { normalizePacing, type PacingConfig } from './pacing.ts';
import { normalizeReport, type ReportConfig } from './report.ts';
import { normalizeS3Options, type S3Options } from './s3.ts';
import { normalizeSource, requireCredentials, type SourceConfig } from './source.ts';
import { normalizeState, type StateConfig } from './state.ts';

/** Options validated and defaulted, per concern: each stage takes its own part. */
export interface NormalizedOptions {
  source: SourceConfig;
  markets: MarketsConfig;
  outputs: OutputsConfig;
  state: StateConfig;
  report: ReportConfig;
  pacing: PacingConfig;
  s3: S3Options;
}

/**
 * Validates options and fills every default, once. Environment variables are read from `env`
 * (not `process.env` directly) so tests and the library API can pass their own. A replay with
 * no --market takes `inputMarkets`, the markets its raw input lists (src/run/options.ts
 * `resolveOptions` reads them).
 */
export function normalizeOptions(
  options: Options,
  env: NodeJS.ProcessEnv = process.env,
  inputMarkets: string[] = [],
): NormalizedOptions {
  checkOutSyntax(options.out ?? DEFAULTS.out);
  const state = normalizeState(options);
  const listed = normalizeMarkets(options, inputMarkets);
  const outputs = normalizeOutputs(options, { markets: listed, state });
  // A star's dim_album is keyed by id: it always dedupes.
  const markets = outputs.model === 'star' ? { ...listed, dedupe: true } : listed;
  const source = normalizeSource(options, env);
  const report = normalizeReport(options.report, { source, markets, outputs, state });
  const pacing = normalizePacing(options);
  const s3 = normalizeS3Options(options, env);
  refuseS3OnlyFlags(options);
  // Last: a mistyped flag is worth reporting before missing secrets.
  requireCredentials(source);
  const normalized = { source, markets, outputs, state, report, pacing, s3 };
  NORMALIZED.add(normalized);
  return normalized;
}

/**
 * What `normalizeOptions` returned: only those are taken as validated. A key's presence would
 * let any object with an `outputs` key (a mistyped Lambda event) skip every check.
 */
const NORMALIZED = new WeakSet<object>();

/** Options already normalized (a library user may pass either to `run()`). */
export function isNormalized(options: Options | NormalizedOptions): options is NormalizedOptions {
  return NORMALIZED.has(options);
}

/** The flags that set how S3 objects are uploaded and stored: they do nothing elsewhere. */
const S3_OBJECT_FLAGS = [
  ['s3Tags', '--s3-tag'],
  ['s3Sse', '--s3-sse'],
  ['s3SseKmsKeyId', '--s3-sse-kms-key-id'],
  ['s3StorageClass', '--s3-storage-class'],
  ['s3PartSize', '--s3-part-size'],
  ['s3QueueSize', '--s3-queue-size'],
] as const;

/**
 * An S3 object setting given to a run that writes no S3 object (tags on a file) would be
 * silently ignored: the run was meant to go elsewhere, or the flag is a leftover. Refused.
 */
function refuseS3OnlyFlags(options: Options): void {
  const places = [options.out, options.rejects, options.raw, options.report, options.state];
  if (places.some((place) => place !== undefined && /^s3:\/\//i.test(place))) return;
  for (const [key, flag] of S3_OBJECT_FLAGS) {
    const value = options[key];
    if (value === undefined || (key === 's3Tags' && Object.keys(value).length === 0)) continue;
    throw usageError(
      `option ${flag} applies to S3 objects, and no output of this run goes to s3://`,
    );
  }
}
