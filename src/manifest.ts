import { posix } from 'node:path';
import { expandOut, type OutVars } from './core/options.ts';
import type { OutputReport } from './encode.ts';

/**
 * `_manifest.json` beside the data: in the directory (or key prefix) that holds every output —
 * for `s3://b/dt={date}/market={market}/albums.csv`, in `s3://b/dt=…/`.
 */
export function manifestLocation(out: string, vars: OutVars): string {
  const marker = '\u0000';
  const expanded = expandOut(out, { ...vars, market: marker });
  const fixed = expanded.includes(marker) ? expanded.slice(0, expanded.indexOf(marker)) : expanded;
  const dir = fixed.slice(0, fixed.lastIndexOf('/') + 1);
  if (/^s3:\/\//i.test(fixed)) return `${dir}_manifest.json`;
  return posix.join(dir === '' ? '.' : dir, '_manifest.json');
}

/** An output as the manifest lists it: `bytes` and `sha256` of what was stored. */
export function manifestObject({
  location,
  market,
  rows,
  storedBytes,
  sha256,
  etag,
}: OutputReport) {
  return {
    location,
    market,
    rows,
    bytes: storedBytes,
    sha256,
    ...(etag === undefined ? {} : { etag }),
  };
}
