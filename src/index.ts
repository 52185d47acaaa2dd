export { PonderError, isPonderError } from "./errors";
