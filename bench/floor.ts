/**
 * Reference (a) "the floor": fetch the same pages with the same concurrency and discard them.
 * Same token flow, the same undici Agent settings and the same lean undici import as the pipeline
 * (src/sources/http.ts); no parsing, no output.
 * With PARSE=1 each page is also decoded and JSON.parse'd (then discarded): what any client that
 * reads the albums must pay at least, above the fetching.
 * With PARSE=rows each parsed page is also made into rows and CSV bytes (the project's own
 * albumToRows and csvRecord, in a plain loop, written to nothing): the least a pipeline on one
 * thread must pay for the same work, without streams.
 * With PARSE=worker each page's bytes are handed (transferred, not copied) to one worker thread
 * that decodes and JSON.parses them: the least any design that parses off the fetching thread
 * must pay. WORKERS=N spreads the pages over N such threads. With PARSE=worker-rows the worker
 * also makes the rows and CSV and hands the bytes back (transferred): a parallel pipeline's least.
 * Env: SPOTIFY_API_URL, CONCURRENCY, ALBUMS, PARSE, WORKERS.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { csvRecord } from '../src/transforms/csv.ts';
import { albumToRows } from '../src/transforms/rows.ts';

const out = Buffer.allocUnsafe(1 << 20);
/** A page's rows as CSV, encoded into one reused buffer; how many bytes. */
function toCsv(json: { albums: { items: unknown[] } }): number {
  let at = 0;
  for (const album of json.albums.items) {
    for (const row of albumToRows(album)) at += out.write(csvRecord(row, true), at);
  }
  return at;
}

if (!isMainThread) {
  // A worker: decode and parse every page it is handed (and with rows, make its CSV and hand
  // the bytes back); answer the count when told to end.
  let pages = 0;
  parentPort?.on('message', (message: ArrayBuffer | 'end') => {
    if (message === 'end') {
      parentPort?.postMessage(pages);
      return;
    }
    const json = JSON.parse(Buffer.from(message).toString('utf8'));
    pages++;
    // Every page is answered, so the fetching thread can bound the pages in the worker's queue.
    if (workerData?.rows) {
      const csv = new Uint8Array(out.subarray(0, toCsv(json))); // a copy, with its own ArrayBuffer
      parentPort?.postMessage(csv.buffer, [csv.buffer]);
    } else parentPort?.postMessage('page');
  });
} else {
  await main();
}

async function main(): Promise<void> {
  const { Agent, request } = await import('../src/sources/http.ts');
  const base = process.env.SPOTIFY_API_URL as string;
  const concurrency = Number(process.env.CONCURRENCY ?? 4);
  const albums = Number(process.env.ALBUMS);
  const parse = process.env.PARSE === '0' ? '' : (process.env.PARSE ?? '');
  if (!['', '1', 'rows', 'worker', 'worker-rows'].includes(parse))
    throw new Error(`PARSE must be 0, 1, rows, worker or worker-rows, got ${parse}`);
  let csvBytes = 0;
  // Pages handed to workers and not yet answered: at most `concurrency`, as a pipeline's
  // backpressure would hold them (without it a slower worker's queue grows without bound).
  let queued = 0;
  const waiting: (() => void)[] = [];
  const workers =
    parse === 'worker' || parse === 'worker-rows'
      ? Array.from({ length: Number(process.env.WORKERS ?? 1) }, () => {
          const worker = new Worker(new URL(import.meta.url), {
            workerData: { rows: parse === 'worker-rows' },
          });
          // A page's answer (its CSV, which the pipeline would write), or the count at the end.
          worker.on('message', (m: ArrayBuffer | 'page' | number) => {
            if (typeof m === 'number') return;
            if (m !== 'page') csvBytes += m.byteLength;
            queued--;
            waiting.shift()?.();
          });
          return worker;
        })
      : [];
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
  let handed = 0;

  async function fetcher(): Promise<void> {
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
      if (parse === '') {
        for await (const chunk of res.body) bytes += chunk.length;
        continue;
      }
      const chunks: Buffer[] = [];
      for await (const chunk of res.body) chunks.push(chunk);
      const page = Buffer.concat(chunks);
      bytes += page.length;
      if (parse === '1') JSON.parse(page.toString('utf8'));
      else if (parse === 'rows') csvBytes += toCsv(JSON.parse(page.toString('utf8')));
      else {
        while (queued >= concurrency) await new Promise<void>((resolve) => waiting.push(resolve));
        queued++;
        // A page (~50 KB) is above the pool's size: Buffer.concat gave it its own ArrayBuffer.
        const worker = workers[handed++ % workers.length] as Worker;
        worker.postMessage(page.buffer, [page.buffer as ArrayBuffer]);
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, fetcher));
  await agent.close();
  let parsed = 0;
  for (const worker of workers) {
    worker.postMessage('end');
    parsed += await new Promise<number>((resolve) =>
      worker.on('message', (m) => typeof m === 'number' && resolve(m)),
    );
    await worker.terminate();
  }
  process.stderr.write(
    `floor: ${bytes} bytes${csvBytes ? `, ${csvBytes} bytes of CSV` : ''}${workers.length ? `, ${parsed} pages parsed in workers` : ''}\n`,
  );
}
