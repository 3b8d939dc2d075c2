import type { Writable } from 'node:stream';
import type { Sink, SinkResult } from '../core/sink.ts';

/**
 * Standard output. It cannot be made atomic: on failure the caller learns from the exit status.
 * A reader that goes away early (`| head`) shows up as EPIPE, which the pipeline treats as a
 * normal end.
 */
export class StdoutSink implements Sink {
  readonly writable: Writable;

  constructor(stream: Writable = process.stdout) {
    this.writable = stream;
  }

  async commit(): Promise<SinkResult> {
    return { location: '-' };
  }

  async release(): Promise<void> {}

  async abort(): Promise<void> {}

  async remove(): Promise<void> {}
}

export function isBrokenPipe(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'EPIPE';
}
