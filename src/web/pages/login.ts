/** The login form: an operator's name, or a list owner's or moderator's address with the list password. */
import { html, type Html } from "../escape.js";
import { page, type PageContext } from "./layout.js";

export function loginPage(ctx: PageContext, account = ""): Html {
  return page(
    ctx,
    "Log in",
    html`<form class="login card" method="post" action="/login">
      <label for="account">Operator name, or your address as a list owner or moderator</label>
      <input
        id="account"
        name="account"
        type="text"
        autocomplete="username"
        autocapitalize="none"
        spellcheck="false"
        required
        value="${account}"
      />
      <label for="password">Password (a moderator: the list's moderator password)</label>
      <input id="password" name="password" type="password" autocomplete="current-password" required />
      <button type="submit" class="go">Log in</button>
    </form>`,
  );
}
