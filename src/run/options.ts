import {
  isNormalized,
  type NormalizedOptions,
  normalizeOptions,
} from '../core/options/normalize.ts';
import { normalizeS3Options } from '../core/options/s3.ts';
import type { Options } from '../core/options.ts';
import { Destinations } from '../sinks/open.ts';
import { expandFrom, readRunMarkets } from '../sources/replay.ts';

/**
 * The options of a run, normalized with what only its inputs can tell: a replay with no
 * --market takes the markets its raw landing lists, so it plans what the live run planned —
 * one output per market for `{market}`, and in one output the market column and the
 * cross-market dedupe. The list is read from the first line of each input (every raw line
 * carries its run's markets), not by a pass over the inputs, which may be large gzipped S3
 * objects. Routing pages to per-market outputs as they arrive was the alternative; it cannot
 * pick one output's columns before its first row, nor list the outputs before a page is read.
 * Options already normalized are taken as they are (`normalizeOptions` alone does no I/O).
 */
export async function resolveOptions(
  options: Options | NormalizedOptions,
  env: NodeJS.ProcessEnv,
): Promise<NormalizedOptions> {
  if (isNormalized(options)) return options;
  if ((options.from ?? []).length === 0) return normalizeOptions(options, env);
  const destinations = new Destinations(normalizeS3Options(options, env), env, process.stdout);
  try {
    // Patterns and prefixes (`s3://lake/raw/dt=*/pages.ndjson.gz`) become the inputs they name.
    const from = await expandFrom(options.from ?? [], (prefix, walk) =>
      destinations.list(prefix, walk),
    );
    const markets =
      (options.markets ?? []).length > 0
        ? undefined
        : await readRunMarkets(from, (location) => destinations.read(location));
    return normalizeOptions({ ...options, from }, env, markets);
  } finally {
    await destinations.close();
  }
}
