/**
 * Reference (b) "naive": what the tutorial pipeline does, in Node. Sequential pages following
 * `next`, JSON.parse, every row kept in memory, the CSV built at once, one PutObject (or one
 * write to a file). Kept in bench/ only, to be measured against.
 * Env: SPOTIFY_API_URL, OUT (a path, or s3://bucket/key with AWS_ENDPOINT_URL_S3 set).
 */
import { writeFileSync } from 'node:fs';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { stringify } from 'csv-stringify/sync';
import { COLUMNS } from '../src/transforms/rows.ts';

const base = process.env.SPOTIFY_API_URL as string;
const out = process.env.OUT as string;
const auth = Buffer.from('emulator-id:emulator-secret').toString('base64');
const token = (
  (await (
    await fetch(`${base}/api/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${auth}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    })
  ).json()) as { access_token: string }
).access_token;

type Album = {
  id: string;
  name: string;
  release_date: string;
  external_urls: { spotify: string };
  artists: { id: string; name: string; external_urls: { spotify: string } }[];
};
const rows: string[][] = [];
let url: string | null = `${base}/v1/browse/new-releases?limit=50`;
while (url) {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) throw new Error(`Error: Status code ${res.status}`);
  const page = (await res.json()) as { albums: { items: Album[]; next: string | null } };
  for (const album of page.albums.items) {
    for (const artist of album.artists) {
      rows.push([
        album.id,
        album.name,
        album.release_date,
        album.external_urls.spotify,
        artist.id,
        artist.name,
        artist.external_urls.spotify,
      ]);
    }
  }
  url = page.albums.next;
}
const header = [...COLUMNS];
const csv = stringify([header, ...rows]);
if (out.startsWith('s3://')) {
  const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(out) as RegExpExecArray;
  const client = new S3Client({
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  await client.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: csv, ContentType: 'text/csv' }),
  );
  client.destroy();
} else {
  writeFileSync(out, csv);
}
process.stderr.write(`naive: ${rows.length} rows, ${Buffer.byteLength(csv)} bytes\n`);
