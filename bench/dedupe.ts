/**
 * Memory of --dedupe: heap retained by the deduplication filter per distinct album (and per
 * row, for albums with the emulator's 0–4 artists), with Spotify's 22-character ids. Run with
 * --expose-gc; prints one JSON line.
 *
 *   npx node --expose-gc bench/dedupe.ts [albums]
 */
import { spotifyId } from '../src/emulator/catalogue.ts';
import { createDeduper } from '../src/transforms/albums.ts';

const albums = Number(process.argv[2] ?? 200_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const keep = createDeduper();
gc();
const before = process.memoryUsage().heapUsed;
let rows = 0;
for (let i = 0; i < albums; i++) {
  const artists = [1, 1, 1, 2, 1, 3, 0, 4][i % 8] as number;
  // The id as the pipeline has it: a flat string out of JSON.parse.
  const albumId = JSON.parse(JSON.stringify(spotifyId(1, 1, i))) as string;
  if (keep(albumId)) rows += artists;
}
gc();
const retained = process.memoryUsage().heapUsed - before;
// Use the filter after measuring, so it (and its set) is still alive when measured.
if (keep('')) rows += 0;
console.log(
  JSON.stringify({
    albums,
    rows,
    retainedBytes: retained,
    bytesPerAlbum: retained / albums,
    bytesPerRow: retained / rows,
  }),
);
