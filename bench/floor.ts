/**
 * Reference (a) "the floor": fetch the same pages with the same concurrency and discard them.
 * Same token flow, the same undici Agent settings and the same undici import as the pipeline
 * (src/sources/client.ts); no parsing, no output, and nothing else loaded.
 * With PARSE=1 each page is also decoded and JSON.parse'd (then discarded): what any client that
 * reads the albums must pay at least, above the fetching.
 * With PARSE=rows each parsed page is also made into rows and CSV bytes (the project's own
 * albumToRows and csv-stringify's sync API with the pipeline's options, written nowhere): the least a
 * pipeline on one thread pays for the same work, without streams.
 * With PARSE=worker-rows each page's bytes are handed (transferred, not copied) to a worker
 * thread that parses them, makes the rows and CSV and hands the bytes back; at most CONCURRENCY
 * pages wait for it, as a pipeline's backpressure would hold them: the least a design that does
 * that work off the fetching thread pays.
 * Env: SPOTIFY_API_URL, CONCURRENCY, ALBUMS, PARSE.
 */
import { isMainThread, parentPort, Worker } from 'node:worker_threads';

/** A page's rows as CSV (the pipeline's defaults), in one reused buffer: a view of its bytes. */
async function csvEncoder(): Promise<(json: { albums: { items: unknown[] } }) => Buffer> {
  const [{ albumToRows }, { stringify }] = await Promise.all([
    import('../src/transforms/rows.ts'),
    import('csv-stringify/sync'),
  ]);
  const out = Buffer.allocUnsafe(1 << 20);
  return (json) => {
    const rows = json.albums.items.flatMap((album) => albumToRows(album));
    const at = out.write(stringify(rows, { record_delimiter: '\n', quote_record_delimiter: true }));
    return out.subarray(0, at);
  };
}

if (!isMainThread) {
  // The worker: parse each page it is handed, make its CSV and hand the bytes back.
  const toCsv = await csvEncoder();
  parentPort?.on('message', (message: ArrayBuffer) => {
    const view = toCsv(JSON.parse(Buffer.from(message).toString('utf8')));
    // A copy with its own ArrayBuffer, transferred back (the pipeline would write it).
    const csv = new Uint8Array(view);
    parentPort?.postMessage(csv.buffer, [csv.buffer]);
  });
} else {
  await main();
}

async function main(): Promise<void> {
  const { Agent, request } = await import('undici');
  const base = process.env.SPOTIFY_API_URL as string;
  const concurrency = Number(process.env.CONCURRENCY ?? 4);
  const albums = Number(process.env.ALBUMS);
  const parse = process.env.PARSE === '0' ? '' : (process.env.PARSE ?? '');
  if (!['', '1', 'rows', 'worker-rows'].includes(parse))
    throw new Error(`PARSE must be 0, 1, rows or worker-rows, got ${parse}`);
  const toCsv = parse === 'rows' ? await csvEncoder() : undefined;
  let csvBytes = 0;
  // Pages handed to the worker and not answered yet.
  let queued = 0;
  const waiting: (() => void)[] = [];
  let worker: Worker | undefined;
  if (parse === 'worker-rows') {
    worker = new Worker(new URL(import.meta.url));
    worker.on('message', (csv: ArrayBuffer) => {
      csvBytes += csv.byteLength;
      queued--;
      waiting.shift()?.();
    });
  }
  const agent = new Agent({ connections: concurrency + 1, keepAliveTimeout: 30_000 });
  const token = await request(`${base}/api/token`, {
    dispatcher: agent,
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from('emulator-id:emulator-secret').toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials',
  }).then((r) => r.body.json() as Promise<{ access_token: string }>);

  let next = 0;
  let bytes = 0;
  async function fetcher(): Promise<void> {
    while (next < albums) {
      const offset = next;
      next += 50;
      const res = await request(
        `${base}/v1/browse/new-releases?limit=50&offset=${offset}&locale=*`,
        { dispatcher: agent, headers: { authorization: `Bearer ${token.access_token}` } },
      );
      if (parse === '') {
        for await (const chunk of res.body) bytes += chunk.length;
        continue;
      }
      const chunks: Buffer[] = [];
      for await (const chunk of res.body) chunks.push(chunk);
      const page = Buffer.concat(chunks);
      bytes += page.length;
      if (parse === '1') JSON.parse(page.toString('utf8'));
      else if (toCsv) csvBytes += toCsv(JSON.parse(page.toString('utf8'))).length;
      else if (worker) {
        while (queued >= concurrency) await new Promise<void>((resolve) => waiting.push(resolve));
        queued++;
        // Its own ArrayBuffer to transfer (a small page would share Node's pool).
        const own = new Uint8Array(page);
        worker.postMessage(own.buffer, [own.buffer]);
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, fetcher));
  while (queued > 0) await new Promise<void>((resolve) => waiting.push(resolve));
  await agent.close();
  await worker?.terminate();
  process.stderr.write(`floor: ${bytes} bytes${csvBytes ? `, ${csvBytes} bytes of CSV` : ''}\n`);
}
