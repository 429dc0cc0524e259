"""The deliverability doctor: does the sending domain's DNS let the mail through?

``run_doctor`` (in :mod:`.doctor`) checks, for each mailer, the From domain's
MX, SPF, DMARC and DKIM records and returns :class:`.findings.Finding` rows;
``manage.py maildoctor`` and the admin's Mailers page show them.
"""
