import { Readable } from 'node:stream';
import type { SourcePage } from '../core/records.ts';
import type { RunStats } from '../core/stats.ts';

export interface PageStreamOptions {
  stats: RunStats;
  /** Stop after this many albums, every market's together (the last page is cut). */
  maxItems: number;
  /** Stops what feeds the pages (requests in flight, open inputs) when the stream is destroyed. */
  close?: ((error: Error | null) => Promise<void>) | undefined;
}

/**
 * The one source shape, live and replay alike: a Readable (objectMode) of whole pages over a
 * page generator. The next page is asked for only when the stream's buffer has room, so a
 * stalled consumer stops the fetching (or the reading); the buffer holds one page beyond what
 * the generator keeps in flight. Pages are counted here, once, for both: `stats.pages`, the
 * best total known so far, and the albums `maxItems` counts. The generator yields only the
 * run's markets (the live one fetches only those; a replay skips the others' lines), so the
 * counts are the selected markets', as in the live run.
 */
export class PageStream extends Readable {
  readonly #pages: AsyncGenerator<SourcePage>;
  readonly #o: PageStreamOptions;
  #reading = false;

  constructor(pages: AsyncGenerator<SourcePage>, options: PageStreamOptions) {
    super({ objectMode: true, highWaterMark: 1 });
    this.#pages = pages;
    this.#o = options;
  }

  /** Every call ends in one push (an empty page is pushed too) or the end of the stream. */
  override _read(): void {
    if (this.#reading) return;
    this.#reading = true;
    this.#next().then(
      () => {
        this.#reading = false;
      },
      (error: unknown) => this.destroy(error as Error),
    );
  }

  async #next(): Promise<void> {
    const { stats, maxItems } = this.#o;
    if (stats.albums >= maxItems) {
      this.push(null);
      return;
    }
    const result = await this.#pages.next();
    if (result.done) {
      this.push(null);
      return;
    }
    const page = result.value;
    stats.pages++;
    // Each market's first page adds its total, so progress has the best total known so far.
    if (page.offset === 0 && page.total !== undefined) {
      stats.totalAlbums = (stats.totalAlbums ?? 0) + page.total;
    }
    const room = maxItems - stats.albums;
    if (page.items.length > room) page.items = page.items.slice(0, room);
    stats.albums += page.items.length;
    this.push(page);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const cleanup = async (): Promise<void> => {
      await this.#o.close?.(error).catch(() => {});
      await this.#pages.return(undefined).catch(() => {});
    };
    cleanup().then(() => callback(error));
  }
}
