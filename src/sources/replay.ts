import { createInterface } from 'node:readline';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { SpotifyBatchError } from '../core/errors.ts';
import type { SourceItem } from '../core/records.ts';
import type { RunStats } from '../core/stats.ts';
import { toPage } from './albums.ts';

/**
 * One line of a raw landing file (`--raw`): a page as Spotify sent it, with where and when it
 * was fetched. The body is embedded as the JSON value it is (`body`), or — when it holds line
 * breaks, which would split the line — as its exact text (`bodyText`).
 */
export interface RawLine {
  url: string;
  market: string | null;
  offset: number;
  status: number;
  fetchedAt: string;
  body?: unknown;
  bodyText?: string;
}

/** A raw line's text for a page body received as `text` (valid JSON: it was parsed). */
export function rawLine(meta: Omit<RawLine, 'body' | 'bodyText'>, text: string): string {
  const head = JSON.stringify(meta).slice(0, -1);
  return /[\r\n]/.test(text)
    ? `${head},"bodyText":${JSON.stringify(text)}}\n`
    : `${head},"body":${text.trim()}}\n`;
}

export interface ReplayInput {
  /** Where the bytes came from, for messages. */
  location: string;
  body: NodeJS.ReadableStream;
}

/** Counts the bytes that pass, so a parse error can say where it happened. */
class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _e: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

function badInput(location: string, where: string, why: string, cause?: unknown) {
  return new SpotifyBatchError('ERR_BAD_RECORD', `cannot replay ${location}: ${where}: ${why}`, {
    cause,
    context: { path: location },
  });
}

/**
 * Albums from saved JSON, as the live source would emit them: raw landing files (one page per
 * line, with its market and fetch time), a JSON array of albums, a saved Spotify paging response
 * (`{"albums":{"items":[…]}}`), or NDJSON of albums; gzipped or not (by its magic bytes). Lines
 * are parsed with JSON.parse; a single JSON document is streamed with stream-json (loaded only
 * here), so memory does not grow with the file. `markets` keeps only raw pages of those markets.
 */
export async function* replayAlbums(
  input: ReplayInput,
  { markets, stats, fetchedAt }: { markets: string[]; stats: RunStats; fetchedAt: string },
): AsyncGenerator<SourceItem> {
  const { location } = input;
  const decoded = await openInput(input);
  let stream = decoded.stream;
  const counter = new ByteCounter();
  stream = join(stream, counter);
  const [start, body] = await peekLine(stream);
  stream = body;
  const first = tryParse(start);
  const keep = (market: string | null) =>
    markets.length === 0 || (market !== null && markets.includes(market));
  try {
    if (first !== undefined && isRaw(first)) {
      let n = 0;
      for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
        n++;
        if (line.trim() === '') continue;
        let raw: RawLine;
        try {
          raw = JSON.parse(line) as RawLine;
        } catch (cause) {
          throw badInput(
            location,
            `line ${n}`,
            `not a raw page line (${(cause as Error).message})`,
            cause,
          );
        }
        if (!isRaw(raw)) throw badInput(location, `line ${n}`, 'not a raw page line (no url/body)');
        if (!keep(raw.market)) continue;
        const json = raw.bodyText === undefined ? raw.body : JSON.parse(raw.bodyText);
        const page = toPage(json, raw.url, raw.offset);
        stats.pages++;
        if (page.offset === 0 && page.total !== undefined) {
          stats.totalAlbums = (stats.totalAlbums ?? 0) + page.total;
        }
        const market = raw.market ?? undefined;
        for (const album of page.items) yield { album, market, fetchedAt: raw.fetchedAt };
      }
      return;
    }
    if (first !== undefined && !Array.isArray(first) && typeof first === 'object') {
      const albums = (first as { albums?: { items?: unknown } }).albums;
      if (albums !== undefined) {
        // A saved paging response on one line: the whole document is this line.
        const page = toPage(first, location, 0);
        stats.pages++;
        for (const album of page.items) yield { album, market: undefined, fetchedAt };
        return;
      }
      // NDJSON of albums: one album per line.
      let n = 0;
      for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
        n++;
        if (line.trim() === '') continue;
        let album: unknown;
        try {
          album = JSON.parse(line);
        } catch (cause) {
          throw badInput(location, `line ${n}`, `not JSON (${(cause as Error).message})`, cause);
        }
        yield { album, market: undefined, fetchedAt };
      }
      return;
    }
    // One JSON document over many lines: an array of albums, or a paging response.
    const [{ parser }, { pick }, { streamArray }] = await Promise.all([
      import('stream-json'),
      import('stream-json/filters/pick.js'),
      import('stream-json/streamers/stream-array.js'),
    ]);
    const isArray = start.trimStart().startsWith('[');
    const stages: NodeJS.ReadWriteStream[] = [
      parser.asStream() as unknown as NodeJS.ReadWriteStream,
      ...(isArray
        ? []
        : [pick.asStream({ filter: 'albums.items' }) as unknown as NodeJS.ReadWriteStream]),
      streamArray.asStream() as unknown as NodeJS.ReadWriteStream,
    ];
    let tokens: Readable = stream;
    for (const stage of stages) tokens = join(tokens, stage as unknown as Transform);
    stats.pages++;
    for await (const { value } of tokens as AsyncIterable<{ value: unknown }>) {
      yield { album: value, market: undefined, fetchedAt };
    }
  } catch (error) {
    if (error instanceof SpotifyBatchError) throw error;
    const where = `near byte ${counter.bytes}${decoded.gzip ? ' of the decompressed data' : ''}`;
    throw badInput(location, where, (error as Error).message, error);
  }
}

/**
 * The input's bytes, gunzipped when its first two bytes are gzip's magic. A gzip error — a file
 * cut short at any length, a corrupt header or block, a wrong checksum — becomes the stream's
 * error as one line naming the file and how many compressed bytes of it were read, so it reads
 * the same whether it surfaces while the first line is peeked or while the lines are parsed.
 */
async function openInput(input: ReplayInput): Promise<{ stream: Readable; gzip: boolean }> {
  const [head, stream] = await peek(
    Readable.from(input.body as AsyncIterable<Buffer>, { objectMode: false }),
    2,
  );
  if (head[0] !== 0x1f || head[1] !== 0x8b) return { stream, gzip: false };
  const { createGunzip } = await import('node:zlib');
  const gunzip = createGunzip();
  const out = new PassThrough();
  stream.on('error', (error) => out.destroy(error));
  gunzip.on('error', (error) => {
    // bytesWritten: the compressed bytes the engine had taken in when it failed.
    out.destroy(
      badInput(
        input.location,
        `near byte ${gunzip.bytesWritten} of the gzip file`,
        `the gzip data is truncated or corrupt (${error.message})`,
        error,
      ),
    );
  });
  stream.pipe(gunzip).pipe(out);
  return { stream: out, gzip: true };
}

/** `from.pipe(to)`, with `from`'s errors passed on to `to` (pipe alone would drop them). */
function join(from: Readable, to: Transform): Transform {
  from.on('error', (error) => to.destroy(error));
  return from.pipe(to);
}

function isRaw(value: unknown): value is RawLine {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as RawLine).url === 'string' &&
    ('body' in value || 'bodyText' in value)
  );
}

function tryParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The first `n` bytes (or fewer), and a stream that still yields every byte. */
async function peek(stream: Readable, n: number): Promise<[Buffer, Readable]> {
  const chunks: Buffer[] = [];
  let length = 0;
  const iterator = stream[Symbol.asyncIterator]();
  while (length < n) {
    const next = await iterator.next();
    if (next.done) break;
    chunks.push(next.value as Buffer);
    length += (next.value as Buffer).length;
  }
  const head = Buffer.concat(chunks);
  async function* all() {
    if (head.length > 0) yield head;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      yield next.value as Buffer;
    }
  }
  return [head.subarray(0, n), Readable.from(all(), { objectMode: false })];
}

/** The text up to the first line break (at most 16 MiB looked at), and the whole stream again. */
async function peekLine(stream: Readable): Promise<[string, Readable]> {
  const chunks: Buffer[] = [];
  let length = 0;
  const iterator = stream[Symbol.asyncIterator]();
  let end = -1;
  while (end < 0 && length < 16 * 1024 * 1024) {
    const next = await iterator.next();
    if (next.done) break;
    const chunk = next.value as Buffer;
    const at = chunk.indexOf(0x0a);
    if (at >= 0) end = length + at;
    chunks.push(chunk);
    length += chunk.length;
  }
  const head = Buffer.concat(chunks);
  async function* all() {
    if (head.length > 0) yield head;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      yield next.value as Buffer;
    }
  }
  const line = head
    .subarray(0, end < 0 ? head.length : end)
    .toString('utf8')
    .replace(/^\uFEFF/, '');
  return [line, Readable.from(all(), { objectMode: false })];
}

/**
 * The album stream of a replay: every input in order, read through `read` (a file or S3 object,
 * undefined when there is none), as a Readable like the live source.
 */
export function replaySource(
  locations: string[],
  read: (location: string) => Promise<{ body: NodeJS.ReadableStream } | undefined>,
  options: { markets: string[]; stats: RunStats; fetchedAt: string; maxItems?: number },
): Readable {
  const { stats, maxItems = Number.POSITIVE_INFINITY } = options;
  async function* all(): AsyncGenerator<SourceItem> {
    for (const location of locations) {
      const found = await read(location);
      if (found === undefined) {
        throw new SpotifyBatchError('ERR_CONFIG', `option --from: ${location} does not exist`, {
          context: { path: location },
        });
      }
      for await (const item of replayAlbums({ location, body: found.body }, options)) {
        // --max-items counts the run's albums, every market's together, as the live source does.
        if (stats.albums >= maxItems) return;
        stats.albums++;
        yield item;
      }
    }
  }
  return Readable.from(all(), { objectMode: true, highWaterMark: 16 });
}
