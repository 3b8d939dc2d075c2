import { dirname } from 'node:path';
import { type NormalizedOptions, normalizeOptions, type Options } from './core/options.ts';
import { createStats } from './core/stats.ts';
import { contentType } from './encode.ts';
import { planOutputs, runVars } from './plan.ts';
import { Destinations } from './sinks/open.ts';
import { firstPageUrl, toPage } from './sources/albums.ts';
import { SpotifyClient } from './sources/client.ts';

/** What `spotify-batch check` found: the plan, and that each part of it works. */
export interface CheckReport {
  source: {
    via: string;
    query: string | null;
    /** The first page of each market (or the only list), as the run would request it. */
    urls: string[];
  };
  markets: string[];
  model: string;
  format: string;
  gzip: boolean;
  /** Every data output, with the templates filled in for today. */
  outputs: string[];
  rejects: string | null;
  manifest: string | null;
  /** The one page asked for (limit 1): Spotify's `total` for the first market. */
  spotify: { url: string; total: number | null };
  /** Places proven writable (a directory, or an S3 key through a created-and-aborted upload). */
  writable: string[];
}

/**
 * A dry run: the options as the run would take them, a token, one page (limit 1) through the
 * same client, and every destination proven writable without writing anything that stays.
 * Throws the first failure, as the run would.
 */
export async function check(
  options: Options | NormalizedOptions,
  { env = process.env }: { env?: NodeJS.ProcessEnv } = {},
): Promise<CheckReport> {
  const o = 'perMarket' in options ? options : normalizeOptions(options, env);
  const plan = planOutputs(o, runVars(new Date()));
  const markets: (string | undefined)[] = o.markets.length > 0 ? o.markets : [undefined];
  const urls = markets.map((m) => firstPageUrl(o.apiUrl, o.via, o.limit, o.query, m));
  const controller = new AbortController();
  const client = new SpotifyClient({ ...o, stats: createStats(), signal: controller.signal });
  let spotify: CheckReport['spotify'];
  try {
    const url = firstPageUrl(o.apiUrl, o.via, 1, o.query, markets[0]);
    const page = toPage(await client.getJson(url, 0), url, 0);
    spotify = { url, total: page.total ?? null };
  } finally {
    controller.abort();
    await client.close().catch(() => {});
  }
  const destinations = new Destinations(o.s3, env, process.stdout);
  const writable: string[] = [];
  try {
    // One probe per directory or key prefix: 185 markets need not make 185 uploads.
    const probed = new Set<string>();
    const createDirs = o.model === 'star' || /\{(date|run_id|market)\}/.test(o.out);
    const locations = [
      ...plan.outputs.map((p) => [p.location, '--out', createDirs] as const),
      ...(plan.rejects ? [[plan.rejects, '--rejects', false] as const] : []),
      ...(plan.manifest ? [[plan.manifest, '--manifest', true] as const] : []),
    ];
    for (const [location, flag, dirs] of locations) {
      if (location === '-' || probed.has(dirname(location))) continue;
      probed.add(dirname(location));
      await destinations.probe(location, { contentType: contentType(o), createDirs: dirs, flag });
      writable.push(location);
    }
  } finally {
    await destinations.close();
  }
  return {
    source: { via: o.via, query: o.via === 'search' ? o.query : null, urls },
    markets: o.markets,
    model: o.model,
    format: o.format,
    gzip: o.gzip,
    outputs: plan.outputs.map((p) => p.location),
    rejects: plan.rejects ?? null,
    manifest: plan.manifest ?? null,
    spotify,
    writable,
  };
}
