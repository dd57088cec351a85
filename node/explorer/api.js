// The node's JSON API, as every page reads it (the same routes any client uses).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** JSON integers beyond 2^53 (a nonce is a u64) as BigInt, where the browser
 * gives revivers the source text; elsewhere they stay rounded Numbers. */
function exactIntegers(key, value, context) {
  if (typeof value === "number" && !Number.isSafeInteger(value) && /^-?[0-9]+$/.test(context?.source ?? "")) {
    return BigInt(context.source);
  }
  return value;
}

/** GET a JSON route; an error answer ({"error", "code"}) becomes an ApiError. */
export async function getJSON(path, signal) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: "application/json" }, signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "unreachable", `the node did not answer (${err.message})`);
  }
  let body = null;
  try {
    body = JSON.parse(await response.text(), exactIntegers);
  } catch {
    body = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, body?.code ?? "http_error",
      body?.error ?? `${response.status} ${response.statusText}`);
  }
  return body;
}

/** The directory's organisations as name -> display name (one request per page). */
export async function organisationNames(signal) {
  const { organisations } = await getJSON("/organisations", signal);
  return new Map(organisations.map((o) => [o.name, o.display_name]));
}
