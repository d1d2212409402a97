/** Header a request relayed by another replica carries, so it is never forwarded twice. */
export const FORWARDED_BY = "x-berth-forwarded-by";
