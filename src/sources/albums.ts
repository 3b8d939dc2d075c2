import { SpotifyBatchError } from '../core/errors.ts';
import type { Via } from '../core/options.ts';
import type { SourcePage } from '../core/records.ts';
import type { RunStats } from '../core/stats.ts';
import { type ClientOptions, SpotifyClient } from './client.ts';
import { PageStream } from './pages.ts';

/** Spotify's search refuses `offset + limit` beyond this. */
export const SEARCH_CAP = 1000;
/** The largest search `limit` Development Mode apps may use since February 2026. */
export const DEV_MODE_SEARCH_LIMIT = 10;

export interface PagingOptions {
  via: Via;
  /** Search query (with `via: 'search'`). */
  query: string;
  limit: number;
  /**
   * Requests started ahead of the consumer. A function is asked again before each request: a
   * market waiting for its turn (src/transforms/turn.ts) fetches its share ahead, then the
   * whole window once the markets before it are done.
   */
  concurrency: number | (() => number);
  stats: RunStats;
  /** new-releases' `country` / search's `market`; undefined for Spotify's default. */
  market?: string | undefined;
  /** Cancels this consumer's requests (the client may be shared with others). */
  signal: AbortSignal;
  /** Keep each page's body text (`Page.text`) for the raw landing. @default false */
  keepText?: boolean | undefined;
}

/** What the live source lists, and through which client: a shared one, or its own. */
export type LiveSourceOptions = LiveListing & (SharedClient | OwnClient);

export interface LiveListing extends Omit<PagingOptions, 'market'> {
  /** Markets pulled one after the other into this stream; `[]` for Spotify's default list. */
  markets: string[];
  /** Stop after this many albums (the last page is cut). */
  maxItems: number;
  /**
   * Told of every page in the order its albums are emitted, with the fetch time they carry
   * (the raw landing; with `keepText`, `page.text` is the body as received).
   */
  onPage?:
    | ((page: Page, market: string | undefined, fetchedAt: string) => Promise<void> | void)
    | undefined;
}

/** A client to share: its token, rate-limit gate and connection pool. */
export interface SharedClient {
  client: SpotifyClient;
}

/** The API, credentials and pacing the source makes its own client with. */
export type OwnClient = Omit<ClientOptions, 'signal' | 'stats' | 'concurrency'> & {
  client?: undefined;
};

/** The window as it is now. */
const now = (concurrency: number | (() => number)): number =>
  typeof concurrency === 'number' ? concurrency : concurrency();

/** One parsed page of a Spotify paging object. */
export interface Page {
  items: unknown[];
  offset: number;
  limit: number;
  total: number | undefined;
  next: string | null;
  href: string | undefined;
  /** The URL it was fetched from, and its body as received (with `keepText`). */
  url?: string;
  text?: string;
}

export function firstPageUrl(
  apiUrl: string,
  via: Via,
  limit: number,
  query: string,
  market?: string,
): string {
  if (via === 'search') {
    const params = new URLSearchParams({
      q: query,
      type: 'album',
      limit: String(limit),
      offset: '0',
    });
    if (market) params.set('market', market);
    return `${apiUrl}/v1/search?${params}`;
  }
  const country = market ? `&country=${market}` : '';
  return `${apiUrl}/v1/browse/new-releases?limit=${limit}&offset=0${country}`;
}

/**
 * The URL of the page at `offset`: Spotify's own `next`/`href` with only `offset` (and `limit`)
 * changed, so parameters we never sent (captured responses carry `locale=*`) are kept.
 */
export function pageUrl(base: string, offset: number, limit: number): string {
  const url = new URL(base);
  url.searchParams.set('offset', String(offset));
  url.searchParams.set('limit', String(limit));
  return url.href;
}

/** Checks the paging object's shape; a page we cannot trust fails the run, it is not skipped. */
export function toPage(json: unknown, url: string, offset: number): Page {
  const paging = (json as { albums?: unknown } | null)?.albums as
    | Record<string, unknown>
    | undefined;
  if (!paging || typeof paging !== 'object' || !Array.isArray(paging.items)) {
    throw new SpotifyBatchError(
      'ERR_BAD_PAGE',
      `unexpected response from ${url}: no albums.items array`,
      {
        context: { url, offset },
      },
    );
  }
  const int = (v: unknown): number | undefined =>
    Number.isInteger(v) && (v as number) >= 0 ? (v as number) : undefined;
  return {
    items: paging.items,
    offset: int(paging.offset) ?? offset,
    limit: int(paging.limit) || paging.items.length,
    total: int(paging.total),
    next: typeof paging.next === 'string' ? paging.next : null,
    href: typeof paging.href === 'string' ? paging.href : undefined,
  };
}

/**
 * Yields pages in API order. The first page gives `total` and `limit`; the rest are fetched by
 * offset with up to `concurrency` requests started ahead of the consumer (a window of promises
 * awaited in order). Without a usable `total` it follows `next`, one page at a time. Being a
 * generator, it fetches nothing until asked: a stalled consumer stops the fetching.
 */
export async function* fetchPages(
  client: SpotifyClient,
  options: PagingOptions,
): AsyncGenerator<Page> {
  const { via, concurrency, stats } = options;
  const first = await fetchFirstPage(client, options);
  yield first;
  const limit = first.limit;
  let base = first.next;
  if (base === null || first.items.length === 0) return;
  const total = first.total;
  if (total === undefined || limit < 1) {
    // No usable total: follow `next` sequentially.
    while (base !== null) {
      const offset = Number(new URL(base).searchParams.get('offset') ?? Number.NaN);
      const page = await getPage(
        client,
        base,
        Number.isInteger(offset) ? offset : first.offset,
        options.signal,
        options.keepText,
      );
      yield page;
      base = page.items.length > 0 ? page.next : null;
    }
    return;
  }
  const cap = via === 'search' ? SEARCH_CAP : Number.POSITIVE_INFINITY;
  const end = Math.min(total, cap);
  if (total > cap) stats.searchCapped = true;
  const window: Promise<Page>[] = [];
  let offset = first.offset + first.limit;
  try {
    while (window.length > 0 || offset < end) {
      while (window.length < now(concurrency) && offset < end) {
        const pageLimit = Math.min(limit, end - offset);
        const pending = getPage(
          client,
          pageUrl(base, offset, pageLimit),
          offset,
          options.signal,
          options.keepText,
        );
        // Handled when its turn comes; until then a rejection must not count as unhandled.
        pending.catch(() => {});
        window.push(pending);
        offset += pageLimit;
      }
      yield await (window.shift() as Promise<Page>);
    }
  } finally {
    window.length = 0;
  }
}

async function getPage(
  client: SpotifyClient,
  url: string,
  offset: number,
  signal: AbortSignal,
  keepText = false,
): Promise<Page> {
  let text: string | undefined;
  const keep = keepText
    ? (body: string) => {
        text = body;
      }
    : undefined;
  const page = toPage(await client.getJson(url, offset, signal, keep), url, offset);
  page.url = url;
  if (text !== undefined) page.text = text;
  return page;
}

/**
 * Search answers 400 "Invalid limit" to Development Mode apps asking for more than 10 per page:
 * step down once to 10 rather than fail.
 */
async function fetchFirstPage(client: SpotifyClient, options: PagingOptions): Promise<Page> {
  const { via, limit, query, market, signal } = options;
  try {
    return await getPage(
      client,
      firstPageUrl(client.apiUrl, via, limit, query, market),
      0,
      signal,
      options.keepText,
    );
  } catch (error) {
    const invalidLimit =
      via === 'search' &&
      limit > DEV_MODE_SEARCH_LIMIT &&
      error instanceof SpotifyBatchError &&
      error.context.status === 400 &&
      /limit/i.test(error.message);
    if (!invalidLimit) throw error;
    options.stats.searchLimit = DEV_MODE_SEARCH_LIMIT;
    const url = firstPageUrl(client.apiUrl, via, DEV_MODE_SEARCH_LIMIT, query, market);
    return getPage(client, url, 0, signal, options.keepText);
  }
}

/**
 * Pages of several markets, market after market (each in API order). The first pages of the
 * next markets are requested ahead, up to `concurrency` markets, so the API stays busy across
 * market boundaries (a new-releases list is about two pages); the shared client's gate still
 * bounds what is in flight.
 */
export async function* fetchMarketPages(
  client: SpotifyClient,
  options: PagingOptions,
  markets: (string | undefined)[],
): AsyncGenerator<{ page: Page; market: string | undefined }> {
  interface Started {
    market: string | undefined;
    pages: AsyncGenerator<Page>;
    head: Promise<IteratorResult<Page>>;
  }
  const start = (market: string | undefined): Started => {
    const pages = fetchPages(client, { ...options, market });
    const head = pages.next();
    head.catch(() => {}); // awaited in its turn
    return { market, pages, head };
  };
  const ahead: Started[] = [];
  let next = 0;
  try {
    while (ahead.length > 0 || next < markets.length) {
      while (ahead.length < Math.max(1, now(options.concurrency)) && next < markets.length) {
        ahead.push(start(markets[next++]));
      }
      const current = ahead.shift() as Started;
      for (let result = await current.head; !result.done; result = await current.pages.next()) {
        yield { page: result.value, market: current.market };
      }
    }
  } finally {
    await Promise.all(ahead.map((started) => started.pages.return(undefined).catch(() => {})));
  }
}

/**
 * The live source: Spotify's pages of every market, in API order, as a {@link PageStream}. A
 * page is emitted once its body parsed completely, so a retried page never emits half of itself.
 * Destroying the stream aborts its requests in flight (and closes the client if it made it).
 */
export function liveSource(options: LiveSourceOptions): PageStream {
  const controller = new AbortController();
  const signal = AbortSignal.any([options.signal, controller.signal]);
  const client =
    options.client === undefined
      ? new SpotifyClient({ ...options, concurrency: now(options.concurrency), signal })
      : options.client;
  const markets = options.markets.length > 0 ? options.markets : [undefined];
  const { onPage } = options;
  async function* pages(): AsyncGenerator<SourcePage> {
    for await (const { page, market } of fetchMarketPages(
      client,
      { ...options, signal },
      markets,
    )) {
      const fetchedAt = new Date().toISOString();
      // Waited for: the raw landing's writes keep their backpressure.
      await onPage?.(page, market, fetchedAt);
      const { items, offset, total, url = '' } = page;
      yield { items, market, offset, total, fetchedAt, url };
    }
  }
  return new PageStream(pages(), {
    stats: options.stats,
    maxItems: options.maxItems,
    close: async (error) => {
      controller.abort(error ?? undefined);
      if (options.client === undefined) await client.close();
    },
  });
}
