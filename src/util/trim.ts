/**
 * Trimming in linear time. A regex such as `/[ \t]+$/` is retried at every offset of a long blank run
 * that is followed by anything else, which is quadratic in the run's length (a 900 KB header field of
 * folded blank lines took minutes); these walk inwards once from each end instead.
 */

/** `s` without the leading characters that are in `chars`. */
export function trimStartOf(s: string, chars: string): string {
  let start = 0;
  while (start < s.length && chars.includes(s.charAt(start))) start++;
  return start === 0 ? s : s.slice(start);
}

/** `s` without the trailing characters that are in `chars`. */
export function trimEndOf(s: string, chars: string): string {
  let end = s.length;
  while (end > 0 && chars.includes(s.charAt(end - 1))) end--;
  return end === s.length ? s : s.slice(0, end);
}

/** `s` without the leading characters in `leading` and the trailing ones in `trailing`. */
export function trimOf(s: string, leading: string, trailing: string = leading): string {
  return trimEndOf(trimStartOf(s, leading), trailing);
}
