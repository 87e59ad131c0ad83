"""GS1 EPCIS 2.0 / CBV 2.0: the event hash and the export of a batch's history."""
