/** Address syntax shared by the list schema and the routing code; no dependencies, cheap to load. */

/**
 * A mailbox as list files may name it: local@domain with an RFC 5322 dot-atom local part (so no
 * spaces, CR/LF, NUL, slashes or double quotes: it can never inject a header). Stricter checks for
 * addresses that become paths are in addresses.ts (`addressProblem`) and LIST_ADDRESS_RE.
 */
export const ADDRESS_RE =
  /^[A-Za-z0-9!#%&'*+=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/**
 * A list's own address becomes a directory name (state, archives) and a header value: stricter than a
 * member's, letters, digits, `.`, `_` and `-` only in the local part.
 */
export const LIST_ADDRESS_RE =
  /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
