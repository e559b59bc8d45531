"""triagebot: a bilingual support chatbot for an expense-reimbursement and e-invoice SaaS."""

__version__ = "0.1.0"
