/** Aligned plain-text tables for human output: the one renderer every command uses. */

export interface RowOptions {
  /** columns (by index) padded on the left, as numbers are */
  readonly rightAligned?: readonly number[];
  /** pad the last column too (when something follows it on the line); trailing blanks are cut otherwise */
  readonly padLast?: boolean;
  /** cut a cell longer than its column, ending it with this mark; cells are never cut without it */
  readonly ell?: string;
}

/** Each column as wide as its widest cell, header included. */
export function columnWidths(head: readonly string[], rows: readonly (readonly string[])[]): number[] {
  return head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
}

/** One row, its cells padded to `widths` and joined by two spaces. */
export function alignRow(cells: readonly string[], widths: readonly number[], o: RowOptions = {}): string {
  const cut = (s: string, n: number): string =>
    o.ell === undefined || s.length <= n ? s : n <= 0 ? "" : s.slice(0, n - 1) + o.ell;
  const line = cells
    .map((c, i) => {
      const n = widths[i] ?? 0;
      const v = cut(c, n);
      if (i === cells.length - 1 && !o.padLast) return v;
      return o.rightAligned?.includes(i) ? v.padStart(n) : v.padEnd(n);
    })
    .join("  ");
  return o.padLast ? line : line.trimEnd();
}

/** The header and the rows as aligned lines. */
export function tableLines(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  o: RowOptions & { readonly widths?: readonly number[] } = {},
): string[] {
  const widths = o.widths ?? columnWidths(head, rows);
  return [alignRow(head, widths, o), ...rows.map((r) => alignRow(r, widths, o))];
}

/** The table as text, a newline after each line. */
export function table(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  o: RowOptions = {},
): string {
  return tableLines(head, rows, o).join("\n") + "\n";
}
