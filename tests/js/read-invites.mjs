// Reads iCalendar texts with ical.js and prints what a calendar would see, for the tests.
// stdin: a JSON array of iCalendar texts. stdout: a JSON array, one entry per text:
// {"method", "events": [{"uid", "start", "end", "summary", "description", "location",
//  "organizer": {"address", "cn"}, "attendees": [{"address", "cn"}]}]}
// where "start" and "end" are UTC instants in whole seconds since the epoch, resolved with the
// VTIMEZONE the text itself carries; or {"error": message} when the text does not parse.
import ICAL from "ical.js";

function party(property) {
  if (property === null) return null;
  return { address: property.getFirstValue(), cn: property.getParameter("cn") ?? null };
}

function instant(time) {
  return time === null ? null : time.toUnixTime();
}

function readEvent(vevent) {
  const text = (name) => vevent.getFirstPropertyValue(name);
  return {
    uid: text("uid"),
    start: instant(text("dtstart")),
    end: instant(text("dtend")),
    summary: text("summary"),
    description: text("description"),
    location: text("location"),
    organizer: party(vevent.getFirstProperty("organizer")),
    attendees: vevent.getAllProperties("attendee").map(party),
  };
}

function read(source) {
  try {
    const calendar = new ICAL.Component(ICAL.parse(source));
    return {
      method: calendar.getFirstPropertyValue("method"),
      events: calendar.getAllSubcomponents("vevent").map(readEvent),
    };
  } catch (error) {
    return { error: String(error) };
  }
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const sources = JSON.parse(Buffer.concat(chunks).toString("utf8"));
process.stdout.write(JSON.stringify(sources.map(read)));
