#!/usr/bin/env node
// The `berth` command. A committed shim, so npm links it on install even before the first build.
import("../dist/main.js").catch((err) => {
  if (err?.code === "ERR_MODULE_NOT_FOUND" && String(err.message).includes("dist/main.js")) {
    process.stderr.write(
      "berth: the CLI is not built yet; run `npm run build` (or `npm start`) in the checkout\n",
    );
    process.exit(1);
  }
  throw err;
});
