/**
 * Reference (a) "the floor": fetch the same pages with the same concurrency and discard them.
 * Same token flow, the same undici Agent settings and the same lean undici import as the pipeline
 * (src/sources/http.ts); no parsing, no output.
 * With PARSE=1 each page is also decoded and JSON.parse'd (then discarded): what any client that
 * reads the albums must pay at least, above the fetching.
 * Env: SPOTIFY_API_URL, CONCURRENCY, ALBUMS, PARSE.
 */
import { Agent, request } from '../src/sources/http.ts';

const base = process.env.SPOTIFY_API_URL as string;
const concurrency = Number(process.env.CONCURRENCY ?? 4);
const albums = Number(process.env.ALBUMS);
const parse = process.env.PARSE === '1';
const agent = new Agent({ connections: concurrency + 1, keepAliveTimeout: 30_000 });
const token = await request(agent, `${base}/api/token`, {
  method: 'POST',
  headers: {
    authorization: `Basic ${Buffer.from('emulator-id:emulator-secret').toString('base64')}`,
    'content-type': 'application/x-www-form-urlencoded',
  },
  body: 'grant_type=client_credentials',
}).then((r) => r.body.json() as Promise<{ access_token: string }>);

let next = 0;
let bytes = 0;
async function worker(): Promise<void> {
  while (next < albums) {
    const offset = next;
    next += 50;
    const res = await request(
      agent,
      `${base}/v1/browse/new-releases?limit=50&offset=${offset}&locale=*`,
      {
        headers: { authorization: `Bearer ${token.access_token}` },
      },
    );
    if (parse) {
      const chunks: Buffer[] = [];
      for await (const chunk of res.body) chunks.push(chunk);
      const page = Buffer.concat(chunks);
      bytes += page.length;
      JSON.parse(page.toString('utf8'));
    } else {
      for await (const chunk of res.body) bytes += chunk.length;
    }
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
await agent.close();
process.stderr.write(`floor: ${bytes} bytes\n`);
