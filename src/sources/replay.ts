import { createInterface } from 'node:readline';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { SpotifyBatchError } from '../core/errors.ts';
import type { SourcePage } from '../core/records.ts';
import type { RunStats } from '../core/stats.ts';
import { toPage } from './albums.ts';
import { PageStream } from './pages.ts';

/**
 * One line of a raw landing file (`--raw`): a page as Spotify sent it, with where and when it
 * was fetched. The body is embedded as the JSON value it is (`body`), or — when it holds line
 * breaks, which would split the line — as its exact text (`bodyText`).
 */
export interface RawLine {
  url: string;
  market: string | null;
  /** The markets of the run that fetched it, in order (`[]`: Spotify's default list). */
  markets?: string[];
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

/** The key that says the inputs held raw page lines (markets are checked only then). */
const RAW_LINES = '\u0000raw';

/** Albums of a saved document per emitted page: the API's largest page. */
const DOCUMENT_PAGE = 50;

/**
 * Pages from saved JSON, as the live source would emit them: raw landing files (one page per
 * line, with its market, offset and fetch time), a JSON array of albums, a saved Spotify paging
 * response (`{"albums":{"items":[…]}}`), or NDJSON of albums; gzipped or not (by its magic
 * bytes). Albums that are not a raw page come in pages of {@link DOCUMENT_PAGE}, stamped with
 * the run's `fetchedAt`. Lines are parsed with JSON.parse; a single JSON document is streamed
 * with stream-json (loaded only here), so memory does not grow with the file. `markets` keeps
 * only raw pages of those markets (`[]`: all), as the live run fetched only those: the lines of
 * other markets are skipped before their pages are read.
 */
async function* replayPages(
  input: ReplayInput,
  {
    markets,
    fetchedAt,
    seen,
  }: { markets: string[]; fetchedAt: string; seen?: Map<string, number> },
): AsyncGenerator<SourcePage> {
  const { location } = input;
  const decoded = await openInput(input);
  let stream = decoded.stream;
  const counter = new ByteCounter();
  stream = join(stream, counter);
  const [start, body] = await peekLine(stream);
  stream = body;
  const first = tryParse(start);
  /** Albums of a document as pages, in order. */
  async function* paged(albums: AsyncIterable<unknown>): AsyncGenerator<SourcePage> {
    let items: unknown[] = [];
    let offset = 0;
    const page = (): SourcePage => {
      const done = { items, market: undefined, offset, total: undefined, fetchedAt, url: location };
      offset += items.length;
      items = [];
      return done;
    };
    for await (const album of albums) {
      items.push(album);
      if (items.length === DOCUMENT_PAGE) yield page();
    }
    if (items.length > 0 || offset === 0) yield page();
  }
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
        seen?.set(RAW_LINES, 1);
        if (markets.length > 0 && !markets.includes(raw.market ?? '')) continue;
        seen?.set(raw.market ?? '', (seen.get(raw.market ?? '') ?? 0) + 1);
        const json = raw.bodyText === undefined ? raw.body : JSON.parse(raw.bodyText);
        const { items, offset, total } = toPage(json, raw.url, raw.offset);
        const market = raw.market ?? undefined;
        yield { items, market, offset, total, fetchedAt: raw.fetchedAt, url: raw.url };
      }
      return;
    }
    if (first !== undefined && !Array.isArray(first) && typeof first === 'object') {
      const albums = (first as { albums?: { items?: unknown } }).albums;
      if (albums !== undefined) {
        // A saved paging response on one line: the whole document is this line.
        const { items, offset, total } = toPage(first, location, 0);
        yield { items, market: undefined, offset, total, fetchedAt, url: location };
        return;
      }
      // NDJSON of albums: one album per line.
      async function* lines(): AsyncGenerator<unknown> {
        let n = 0;
        for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
          n++;
          if (line.trim() === '') continue;
          try {
            yield JSON.parse(line);
          } catch (cause) {
            throw badInput(location, `line ${n}`, `not JSON (${(cause as Error).message})`, cause);
          }
        }
      }
      yield* paged(lines());
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
    async function* values(): AsyncGenerator<unknown> {
      for await (const { value } of tokens as AsyncIterable<{ value: unknown }>) yield value;
    }
    yield* paged(values());
  } catch (error) {
    if (error instanceof SpotifyBatchError) throw error;
    const where = `near byte ${counter.bytes}${decoded.gzip ? ' of the decompressed data' : ''}`;
    throw badInput(location, where, (error as Error).message, error);
  }
}

/** Characters that make a `--from` location a pattern: `*`, `?` (`**` spans folders). */
const WILDCARD = /[*?]/;

/** One folder level that does not start with a dot: what `*` and `**` match at a level's start. */
const LEVEL = '(?!\\.)[^/]*';

/**
 * A `--from` pattern as a regular expression over whole locations, one rule for files and S3
 * keys: `*` matches within one folder level (no `/`), `?` one character but `/`, and `**`
 * any number of levels (`s3://lake/raw/**` is every object below raw/). As in a shell, a level
 * that starts with a dot is matched only by a pattern level that starts with one: a killed run's
 * `.pages.ndjson.gz.<rand>.partial` and a `.probe` are not inputs of `raw/dt=*\/*`.
 */
export function fromPattern(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    const levelStart = i === 0 || pattern[i - 1] === '/';
    if (c === '*' && pattern[i + 1] === '*') {
      i++;
      const first = levelStart ? LEVEL : '[^/]*';
      if (pattern[i + 1] === '/') {
        i++;
        source += `(?:${first}/(?:${LEVEL}/)*)?`;
      } else source += `${first}(?:/${LEVEL})*`;
    } else if (c === '*') source += levelStart ? LEVEL : '[^/]*';
    else if (c === '?') source += levelStart ? '[^/.]' : '[^/]';
    else source += c.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** How far a folder walk for a `--from` pattern goes (see {@link expandFrom}). */
export interface Walk {
  /** Folder levels below the listed folder, 1 for its own files; Infinity for `**`. */
  depth: number;
  /** Whether hidden (dot) files and folders can match. */
  hidden: boolean;
}

/**
 * The inputs `--from` names, in order: a location with `*` or `?` is a pattern
 * ({@link fromPattern}) and one ending in `/` a prefix (every file or object below it but
 * hidden ones, as `prefix**`); each becomes the locations that match, sorted, listed by `list`
 * (files: a walk of the folder, only as deep as the pattern reaches; S3: ListObjectsV2), so a
 * pattern over S3 reads what the same pattern over files would. Other locations stay as given
 * (a shell has already expanded a local glob). An input named twice is read once, where first
 * named. A pattern or prefix that matches nothing is a usage error, as a missing file is.
 */
export async function expandFrom(
  locations: string[],
  list: (prefix: string, walk: Walk) => Promise<string[]>,
): Promise<string[]> {
  const expanded = new Set<string>();
  for (const location of locations) {
    const isPrefix = location.endsWith('/') && !WILDCARD.test(location);
    if (!isPrefix && !WILDCARD.test(location)) {
      expanded.add(location);
      continue;
    }
    const pattern = isPrefix ? `${location}**` : location;
    const prefix = pattern.slice(0, pattern.search(WILDCARD));
    // The levels below the folder the prefix names: what the walk of that folder must reach.
    const levels = pattern.slice(prefix.lastIndexOf('/') + 1).split('/');
    const walk = {
      depth: pattern.includes('**') ? Number.POSITIVE_INFINITY : levels.length,
      hidden: levels.some((level) => level.startsWith('.')),
    };
    const match = fromPattern(pattern);
    const found = (await list(prefix, walk))
      .filter((l) => match.test(l))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (found.length === 0) {
      throw new SpotifyBatchError(
        'ERR_CONFIG',
        `option --from: ${isPrefix ? 'nothing below' : 'nothing matches'} ${location}`,
        { context: { path: location } },
      );
    }
    for (const l of found) expanded.add(l);
  }
  return [...expanded];
}

/**
 * The markets of the run that wrote a raw landing, from the first line of each input (every
 * raw line lists them): what a replay with no --market takes as its own, so it has the live
 * run's market column, dedupe and `{market}` outputs. Reads one line per input, not the file:
 * the inputs may be large gzipped S3 objects. Undefined when no input says (plain JSON, a raw
 * landing written before lines listed their run's markets, an input that cannot be read: the
 * replay itself reports that).
 */
export async function readRunMarkets(
  locations: string[],
  read: (location: string) => Promise<{ body: NodeJS.ReadableStream } | undefined>,
): Promise<string[] | undefined> {
  let markets: string[] | undefined;
  for (const location of locations) {
    let body: Readable | undefined;
    try {
      body = (await read(location))?.body as Readable | undefined;
      if (body === undefined) continue;
      const { stream } = await openInput({ location, body });
      const [line, rest] = await peekLine(stream);
      rest.on('error', () => {}).destroy();
      const first = tryParse(line);
      if (!isRaw(first) || !Array.isArray(first.markets)) continue;
      markets = [...new Set([...(markets ?? []), ...first.markets])];
    } catch {
      // The replay reads it again and names what is wrong with it.
    } finally {
      // The rest is not read: an S3 body left open would hold its connection.
      body?.on('error', () => {}).destroy();
    }
  }
  return markets;
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
 * The source of a replay: the pages of every input in order, read through `read` (a file or S3
 * object, undefined when there is none), as the same {@link PageStream} as the live source.
 */
export function replaySource(
  locations: string[],
  read: (location: string) => Promise<{ body: NodeJS.ReadableStream } | undefined>,
  options: { markets: string[]; stats: RunStats; fetchedAt: string; maxItems: number },
): PageStream {
  async function* all(): AsyncGenerator<SourcePage> {
    /** Raw pages per market: a market the raw lines never show was not pulled. */
    const seen = new Map<string, number>();
    for (const location of locations) {
      const found = await read(location);
      if (found === undefined) {
        throw new SpotifyBatchError('ERR_CONFIG', `option --from: ${location} does not exist`, {
          context: { path: location },
        });
      }
      yield* replayPages({ location, body: found.body }, { ...options, seen });
    }
    // Even an empty market lands one page: none at all means its live run failed there (or it
    // was never pulled), and an empty output would say it had no albums. Not asked of a
    // --max-items replay, which may stop before a market's pages.
    const missing = options.markets.find((m) => !seen.has(m));
    if (
      seen.has(RAW_LINES) &&
      missing !== undefined &&
      options.maxItems === Number.POSITIVE_INFINITY
    ) {
      throw new SpotifyBatchError(
        'ERR_BAD_RECORD',
        `market ${missing}: no page of it in ${locations.join(', ')} (its live run failed there, or did not pull it); with --on-market-error skip the other markets are published, as that run did`,
        { context: { market: missing } },
      );
    }
  }
  return new PageStream(all(), options);
}
