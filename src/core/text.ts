/**
 * A server's text (an error body's message) as one line of at most `max` characters, so a
 * proxy cannot forge lines or colours on stderr: ANSI escape sequences dropped, other control
 * characters and runs of white space one space, the rest cut short with `…`.
 */
export function oneLine(text: string, max = 200): string {
  const line = text
    // biome-ignore lint/suspicious/noControlCharactersInRegex: ESC is what is removed.
    .replace(/\u001b\[[0-?]*[ -/]*[@-~]/g, '')
    .replace(/[\s\p{Cc}]+/gu, ' ')
    .trim();
  return line.length > max ? `${line.slice(0, max).trimEnd()}…` : line;
}
